"""The domain types of trailkeep: events, tenants, keys, time and the bytes we hash. No I/O."""
