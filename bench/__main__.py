"""`make bench`: every benchmark, each reported as a ratio to a baseline measured in the same run.

Uses DATABASE_URL / REDIS_URL when set, else a throwaway SQLite file under var/.
"""

from bench.setup import django_setup

django_setup()

from bench import auth, burst, deliveries, entitlements, webhooks  # noqa: E402  (Django must be set up first)

if __name__ == "__main__":
    auth.run()
    deliveries.run()
    webhooks.run()
    entitlements.run()
    burst.run()
