"""The Redis databases a test may touch: only those it is given, by URL. On a shared Redis another database is
another suite's cache or broker, so nothing here derives a database from another (REDIS_URL's server with a
number of our choosing): it is named in full, or the test skips.

- `REDIS_URL`: the cache, the rate limiter and the locks' Redis (the suite empties it between tests).
- `TOLLGATE_TEST_BROKER_URL`: the broker of the tests that run real Celery workers or beat (tests/webhooks/
  workers.py, tests/e2e/, tests/core/test_beat_leader.py, tests/deploy/test_compose_sequence.py); they empty it
  before and after. Give it a database of its own (`redis://127.0.0.1:6379/14` beside `REDIS_URL=…/15`, as
  .ci/run does): the cache's emptying between tests would take the workers' queue with it.

A test that starts a redis-server of its own (tests/core/test_frozen_redis.py) does as it likes with it.
"""

from __future__ import annotations

import os

import redis

BROKER_VARIABLE = "TOLLGATE_TEST_BROKER_URL"
BROKER_NEEDED = (
    f"needs Redis and a database of its own for the workers' broker: set REDIS_URL and {BROKER_VARIABLE}="
    "redis://host:6379/N (CI does); the tests empty it"
)


def given_broker_url() -> str | None:
    """The workers' broker as given (`TOLLGATE_TEST_BROKER_URL`), or None."""
    return os.environ.get(BROKER_VARIABLE, "").strip() or None


def given_urls() -> set[str]:
    return {url for url in (os.environ.get("REDIS_URL", "").strip(), given_broker_url()) if url}


def flush(url: str) -> None:
    """Empties the database at `url`, which must be one the run was given (REDIS_URL or TOLLGATE_TEST_BROKER_URL)."""
    if url not in given_urls():
        raise AssertionError(f"refusing to flush a Redis database the run was not given: {url}")
    redis.Redis.from_url(url).flushdb()
