"""Fault-injection test fixtures: the three services in-process (``tests/support/stack.py``)."""

from tests.support.stack import sqlite_settings, stack

__all__ = ["sqlite_settings", "stack"]
