"""Stripe test clocks for tenants (`/api/v1/test_clocks`): simulate renewals per customer, in test mode only.

A project whose Stripe key is a test key creates a clock at a frozen time, creates customers on it (`POST
/customers` with `test_clock`), subscribes them, and advances the clock: Stripe renews, bills and retries
their subscriptions as if that time had passed, and its events reach Tollgate like any other (renewal
invoices, their `source: "invoice"` payments). Customers not on the clock do not move. Stripe's clock is the
truth; `TestClock` mirrors what Stripe last answered.

* `selectors` — the project's clocks;
* `services` — create, refresh, advance, delete (Stripe outside every transaction, each write keyed by our id);
* `apis`, `urls` — the HTTP routes.
"""
