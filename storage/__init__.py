"""Persistence: SQLAlchemy models, engine and sessions, repositories by use, Alembic migrations."""
