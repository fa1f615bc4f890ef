"""The goals service: tenants' goals, milestones, participants, check-in policies and progress."""
