"""Stripe's read rate limit per account (stripe_gateway.read_limit), which the mirror's re-fetches, reconciliation and
adoption count their reads against: 20 reads in a second, the 21st refused (or waited for, by the long runs), each
account on its own; with the cache unreachable the read goes ahead."""

import logging
import uuid

import pytest
import time_machine
from django.test import override_settings

from core.errors import RateLimited
from stripe_gateway import read_limit
from stripe_gateway.read_limit import STRIPE_READS_PER_SECOND, stripe_read_allowed, stripe_read_wait

START = 1_800_000_000.5  # half a second into a window


def _account() -> str:
    return f"acct_{uuid.uuid4().hex[:16]}"


def test_twenty_reads_a_second_then_refused_per_account():
    account, other = _account(), _account()
    with time_machine.travel(START, tick=False):
        for _ in range(STRIPE_READS_PER_SECOND):
            stripe_read_allowed(account)
        with pytest.raises(RateLimited) as refused:
            stripe_read_allowed(account)
        stripe_read_allowed(other)  # another account has its own budget
    assert STRIPE_READS_PER_SECOND == 20
    assert refused.value.code == "provider_rate_limited"
    assert str(refused.value) == "Stripe read rate limit reached; retry shortly."


def test_a_paced_read_waits_for_the_next_second(monkeypatch):
    account = _account()
    slept = []
    with time_machine.travel(START, tick=False) as traveller:

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            traveller.shift(0.25)

        monkeypatch.setattr(read_limit.time, "sleep", sleep)
        for _ in range(STRIPE_READS_PER_SECOND):
            stripe_read_wait(account)
        assert slept == []
        stripe_read_wait(account)  # the 21st: refused at .5 and .75, counted at the next second's start
    assert slept == [0.05, 0.05]


def test_with_the_cache_unreachable_the_read_goes_ahead(caplog):
    unreachable = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    with override_settings(CACHES=unreachable), caplog.at_level(logging.WARNING, logger=read_limit.__name__):
        answers = [stripe_read_allowed("acct_any") for _ in range(STRIPE_READS_PER_SECOND + 1)]
    assert answers == [None] * (STRIPE_READS_PER_SECOND + 1)
    assert caplog.messages == ["Stripe read limiter unavailable; reading without it."] * (
        STRIPE_READS_PER_SECOND + 1
    )
