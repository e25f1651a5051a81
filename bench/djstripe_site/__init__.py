"""The smallest Django project that serves dj-stripe 2.11's webhook view, for bench/djstripe.py (dj-stripe against
Tollgate on the same captured Stripe events). It runs in the bench's own venv (var/bench-djstripe/venv: dj-stripe
needs `stripe<16`, Tollgate's venv has 16), never in Tollgate's, and nothing of Tollgate's is imported here.
Configured by the environment bench/djstripe.py sets: `DJSTRIPE_BENCH_DATABASE_URL`, `DJSTRIPE_BENCH_STRIPE_KEY`,
`DJSTRIPE_BENCH_STRIPE_API_BASE` (the emulator), and for `prepare` `DJSTRIPE_BENCH_WEBHOOK_SECRET`."""
