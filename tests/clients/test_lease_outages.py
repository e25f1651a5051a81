"""Leases across outages (`tollgate_client.leases.LeasedQuota`), with Tollgate made unreachable by a real TCP proxy
that is stopped and started again: the uses a lease answered while its reports could not reach Tollgate are
reported once it can — through a renewal, the lease's end, a flush or `close()` — with their own ids (to the hold
while it lasts, as usage once it has expired), so they are counted once each and never given back as unused."""

import os
import random
import time
from collections.abc import Callable, Iterator

import pytest
from django.db.models import Sum
from django.utils import timezone
from tollgate_client import Tollgate
from tollgate_client.leases import LeasedQuota

from entitlements.models import Hold, UsageCounter, UsageEvent
from entitlements.tasks import holds_expire_sweep
from tests.clients.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def limit_of(tollgate, plans):
    """`exports` (metered) limited to n for user-1 (a grant on the default product's 3)."""

    def set_limit(n: int) -> None:
        tollgate.entitlements.grants.create(customer="user-1", feature="exports", value=n - 3, reason="test")

    return set_limit


@pytest.fixture
def tcp_proxy(live_server) -> Iterator[TcpProxy]:
    proxy = TcpProxy(live_server.url).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def behind_proxy(tcp_proxy, tenant_a) -> Iterator[Tollgate]:
    """Tenant A's client through the proxy, with one quick retry (an outage is seen at once)."""
    with Tollgate(tenant_a.key, tcp_proxy.url, timeout=5, max_retries=1) as client:
        yield client


def _counted() -> tuple[int, int]:
    """(used, held) as Tollgate counts them (a counter's `used` includes what is held), over the periods the run
    touched: one, or two when it crossed a month's start (the default product's period is the calendar month)."""
    totals = UsageCounter.objects.aggregate(used=Sum("used"), held=Sum("held"))
    return (totals["used"] or 0) - (totals["held"] or 0), totals["held"] or 0


def _until(condition: Callable[[], bool], what: str, within: float = 30.0) -> None:
    """Waits for the background flush to make `condition` true, polling; fails after `within` seconds (generous:
    on busy cores a flush may wait long for its turn, and the condition says what it must have done)."""
    give_up = time.monotonic() + within
    while not condition():
        assert time.monotonic() < give_up, f"not within {within} s: {what}"
        time.sleep(0.02)


def _expire_holds() -> None:
    """Tollgate's clock passes the holds' expiry and its sweep runs."""
    Hold.objects.filter(status="active").update(expires_at=Hold.objects.order_by("created_at")[0].created_at)
    holds_expire_sweep.delay().get()


def test_uses_made_while_unreachable_are_reported_when_it_comes_back_and_the_limit_holds(
    tollgate, behind_proxy, tcp_proxy, limit_of
):
    limit_of(50)
    quota = LeasedQuota(behind_proxy, customer="user-1", feature="exports", lease=20, flush_every=3600)
    assert all(quota.consume(id=f"u{n}") for n in range(5))
    quota.flush()
    assert _counted() == (5, 15)
    tcp_proxy.stop()
    assert [quota.consume(id=f"u{n}") for n in range(5, 21)] == [True] * 15 + [False]  # no new lease
    tcp_proxy.start()
    quota.close()
    assert quota.lost == 0
    assert _counted() == (20, 0)
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == sorted(f"u{n}" for n in range(20))
    assert list(Hold.objects.values_list("status", "consumed")) == [("released", 20)]
    check = tollgate.entitlements.check(customer="user-1", feature="exports")
    assert (check.used, check.held, check.remaining) == (20, 0, 30)


def test_a_renewal_after_an_outage_reports_the_uses_of_the_lease_it_replaces(
    tollgate, behind_proxy, tcp_proxy, limit_of
):
    limit_of(20)
    quota = LeasedQuota(behind_proxy, customer="user-1", feature="exports", lease=5, flush_every=3600)
    assert all(quota.consume(id=f"u{n}") for n in range(3))
    quota.flush()
    tcp_proxy.stop()
    assert [quota.consume(id=f"u{n}") for n in range(3, 6)] == [True, True, False]
    tcp_proxy.start()
    assert quota.consume(id="u6") is True  # a new lease; the one it replaces is reported and released
    assert _counted() == (5, 5)
    assert list(Hold.objects.order_by("created_at").values_list("status", "consumed")) == [
        ("released", 5),
        ("active", 0),
    ]
    quota.close()
    assert (quota.lost, _counted()) == (0, (6, 0))
    assert UsageEvent.objects.count() == 6


def test_uses_of_a_lease_that_expired_during_the_outage_are_recorded_as_usage_with_their_ids(
    tollgate, behind_proxy, tcp_proxy, limit_of
):
    limit_of(50)
    quota = LeasedQuota(
        behind_proxy,
        customer="user-1",
        feature="exports",
        lease=20,
        expires_in=60,
        margin=56,
        flush_every=0.1,
    )
    assert all(quota.consume(id=f"u{n}") for n in range(5))
    _until(lambda: _counted() == (5, 15), "the background flush reports the first 5 uses to the hold")
    assert _counted() == (5, 15)
    tcp_proxy.stop()
    assert all(quota.consume(id=f"u{n}") for n in range(5, 15))
    assert quota.left == 5
    # the lease's 4 s are over: the background flush ends it while Tollgate is unreachable
    _until(lambda: quota.left == 0, "the background flush ends the lease at its deadline")
    assert _counted() == (5, 15)  # its 10 later uses could not be reported
    _expire_holds()  # the outage outlasts the lease: its 20 units go back
    assert _counted() == (5, 0)
    tcp_proxy.start()
    # the next flush: the hold has expired (409), so the uses are recorded as usage
    _until(lambda: _counted() == (15, 0), "the next flush records the 10 late uses as usage")
    assert _counted() == (15, 0)
    quota.close()
    assert quota.lost == 0
    assert _counted() == (15, 0)
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == sorted(f"u{n}" for n in range(15))
    assert list(Hold.objects.values_list("status", "consumed")) == [("expired", 5)]


def test_a_lease_past_its_deadline_in_an_outage_keeps_its_uses_for_the_next_report(
    tollgate, behind_proxy, tcp_proxy, limit_of
):
    limit_of(50)
    quota = LeasedQuota(
        behind_proxy,
        customer="user-1",
        feature="exports",
        lease=20,
        expires_in=60,
        margin=57,
        flush_every=0.1,
    )
    assert quota.consume(id="u0")  # the lease is not used past 3 s
    quota.flush()
    tcp_proxy.stop()
    assert all(quota.consume(id=f"u{n}") for n in range(1, 4))
    assert quota.left == 16
    _until(lambda: quota.left == 0, "the background flush ends the lease while Tollgate is unreachable")
    assert _counted() == (1, 19)  # the 3 uses of the outage wait with the ended lease, still held
    tcp_proxy.start()
    _until(lambda: _counted() == (4, 0), "the next flushes report the 3 uses and release the lease")
    assert _counted() == (4, 0)
    quota.close()
    assert (quota.lost, _counted()) == (0, (4, 0))


def test_close_while_unreachable_counts_the_unreported_uses_as_lost(
    tollgate, behind_proxy, tcp_proxy, limit_of
):
    limit_of(50)
    quota = LeasedQuota(behind_proxy, customer="user-1", feature="exports", lease=20, flush_every=3600)
    assert all(quota.consume(id=f"u{n}") for n in range(3))
    tcp_proxy.stop()
    quota.close()
    assert quota.lost == 3
    tcp_proxy.start()
    assert _counted() == (0, 20)  # the hold gives its units back at its expiry


def _seeds() -> list[int]:
    """`TOLLGATE_LEASE_SEEDS`: a count N (seeds 0…N-1, default 4) or a comma-separated list ("7,12")."""
    raw = os.environ.get("TOLLGATE_LEASE_SEEDS", "4").strip()
    if "," in raw:
        return [int(part) for part in raw.split(",") if part.strip()]
    return list(range(int(raw)))


@pytest.mark.parametrize("seed", _seeds())
def test_random_outages_cuts_and_renewals_around_leased_uses_count_each_use_once(
    seed, tollgate, behind_proxy, tcp_proxy, limit_of
):
    """One random sequence per seed of leased uses, outages (the proxy stopped, then started), connections cut
    while a report, renewal or release may be on its way (its answer lost), and leases ended by their deadline
    (1 s) or by running short. Afterwards: what Tollgate counts is exactly the uses that were answered True, each
    once under its own id, never above the limit, and nothing is held once the holds have expired."""
    rng = random.Random(seed)
    limit = rng.randint(12, 30)
    limit_of(limit)
    quota = LeasedQuota(
        behind_proxy,
        customer="user-1",
        feature="exports",
        lease=rng.randint(2, 8),
        expires_in=60,
        margin=59,
        flush_every=0.02,
    )
    made: list[str] = []
    steps = []
    up = True
    for step in range(30):
        kind = rng.choices(["consume", "outage", "cut", "wait"], weights=[5, 2, 2, 1])[0]
        steps.append(kind)
        if kind == "consume":
            for _ in range(rng.randint(1, 4)):
                use = f"s{seed}-{step}-{len(made)}"
                if quota.consume(id=use):
                    made.append(use)
        elif kind == "outage":
            if up:
                tcp_proxy.stop()
            else:
                tcp_proxy.start()
            up = not up
        elif kind == "cut":
            time.sleep(rng.uniform(0, 0.05))
            tcp_proxy.cut()
        else:
            time.sleep(rng.uniform(0.2, 1.2))  # past a lease's deadline, sometimes
        assert len(made) <= limit, (seed, steps)
    if not up:
        tcp_proxy.start()
    quota.close()
    assert quota.lost == 0, (seed, steps)
    _expire_holds()  # a lease whose answer was cut away holds units, and no use, until its expiry
    assert _counted() == (len(made), 0), (seed, steps)
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == sorted(made), (seed, steps)
    check = tollgate.entitlements.check(customer="user-1", feature="exports")
    # The check counts this period's uses: every one of the run's, unless the run crossed a month's start.
    now = timezone.now()
    current = UsageCounter.objects.filter(period_start__lte=now, period_end__gt=now).values_list(
        "used", flat=True
    )
    used = current.first() or 0
    assert used == len(made) or UsageCounter.objects.count() > 1, (seed, steps)
    assert (check.used, check.remaining) == (used, limit - used), (seed, steps)
