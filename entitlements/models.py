"""Entitlement records (features, grants, revocations, usage, counters, credit ledger) — issue #6."""
