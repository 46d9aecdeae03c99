"""Vendor dialects: each serves one vendor's audit API over the service layer (DESIGN §9)."""
