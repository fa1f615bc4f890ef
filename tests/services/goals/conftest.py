"""Goals test fixtures (defined in ``fixtures.py`` so other test folders can import them)."""

from tests.services.goals.fixtures import clock, goals, goals_settings

__all__ = ["clock", "goals", "goals_settings"]
