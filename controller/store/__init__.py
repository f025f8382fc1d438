"""Persistence: reservations in SQLite (WAL)."""
