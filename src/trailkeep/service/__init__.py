"""Use cases: ingest, query, proofs, tenants, keys. The only layer that combines storage and merkle."""
