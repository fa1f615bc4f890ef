"""The sessions service: check-in schedules and occurrences, coaching sessions, streaks."""
