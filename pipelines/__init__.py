"""Pipeline entry points: ``streaming`` (Pub/Sub in) and ``backfill`` (files in)."""
