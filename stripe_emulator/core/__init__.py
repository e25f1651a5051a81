"""The emulator's core, shared by every service: accounts and backends, store, clock, ids, errors, the wire
layer (params in, render out), routing, idempotency, events and webhook delivery. Nothing here knows about a
particular Stripe resource."""
