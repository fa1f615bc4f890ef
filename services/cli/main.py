"""The operator CLI, ``followthrough``: the app with every command registered."""

from __future__ import annotations

from services.cli import credentials, deadletters, deliveries, status
from services.cli.app import app

__all__ = ["app", "credentials", "deadletters", "deliveries", "status"]

if __name__ == "__main__":
    app()
