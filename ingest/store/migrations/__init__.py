"""Alembic migrations of the relational store (run through ``ingest.store.migrate``, never by path)."""
