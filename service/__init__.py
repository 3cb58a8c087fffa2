"""The HTTP JSON API (FastAPI)."""
