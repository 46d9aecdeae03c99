"""Use cases: ingest, query, proofs, tenants, keys; the one layer joining storage and merkle."""
