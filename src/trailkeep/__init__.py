"""trailkeep: a self-hosted, multi-tenant, tamper-evident audit log."""

__version__ = "0.1.0"
