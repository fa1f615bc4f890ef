"""Database access: async SQLAlchemy engines, platform tables and migrations."""

from shared.db.database import Database, DatabaseUnavailableError

__all__ = ["Database", "DatabaseUnavailableError"]
