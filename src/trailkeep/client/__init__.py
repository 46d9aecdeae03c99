"""The trailkeep Python SDK. Importable without any server dependency (no FastAPI, no drivers)."""
