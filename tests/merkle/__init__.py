"""Tests of the pure merkle package (hashers, compact ranges, proofs, notes, receipts)."""
