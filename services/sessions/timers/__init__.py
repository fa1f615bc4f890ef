"""The timer machinery: planning a goal's schedule, firing due timers, the scheduler."""
