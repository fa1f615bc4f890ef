"""Calendar feeds: each participant's check-ins and coaching sessions as an iCalendar feed."""
