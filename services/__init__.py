"""Followthrough's services, one package each: goals, sessions, notifications."""
