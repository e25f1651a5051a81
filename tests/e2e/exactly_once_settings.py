"""The exactly-once test's web process: the test settings, with a key whose first request was killed taken over
after 3 s instead of production's 300 s, so the test's retries after a kill need not wait minutes."""

from datetime import timedelta

from config.settings.test import *  # noqa: F403

IDEMPOTENCY_LOCK_TIMEOUT = timedelta(seconds=3)
