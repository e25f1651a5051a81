"""Leased consumption of one of a customer's entities (`LeasedQuota(entity=…)`, issue #51 point 5) against a live
server: each lease is a hold on the entity's own limit as well as the account's, so the uses answered from memory
never pass either — in one process, in a race of client processes on two seats under one account limit, and after
a lease holder is killed with kill -9 (its unused units go back to both at expiry)."""

import signal
import time

import pytest
from tollgate_client import Tollgate
from tollgate_client.leases import LeasedQuota

from entitlements.models import EntityCounter, EntityWindowCounter, Hold, UsageCounter, UsageEvent
from entitlements.tasks import holds_expire_sweep
from tests.clients.test_leases import _consumers

pytestmark = pytest.mark.django_db(transaction=True)


def _seats(tollgate: Tollgate, account: int, each: int, windows: dict[str, int] | None = None) -> None:
    """`summaries` on the Free plan: `account` a month for the account, `each` for each of team-1's seats ana and
    bo (the plan gives 2 seats), and `windows` of each seat's own."""
    free = tollgate.products.retrieve("free")
    own: dict[str, object] = {"feature": "seats", "limit": each}
    if windows:
        own["windows"] = windows
    per_entity = {"limit": account, "per_entity": own}
    tollgate.products.update("free", features={**free.features, "summaries": per_entity})
    for seat in ("ana", "bo"):
        tollgate.entitlements.entities.add(customer="team-1", feature="seats", entity=seat)


def _used() -> dict[str, int]:
    return dict(EntityCounter.objects.values_list("entity", "used"))


def test_leased_uses_of_an_entity_stop_at_its_own_limit_and_the_accounts(tollgate, per_seat):
    """10 for the account, 4 a seat: leases of 3 give ana 4 uses exactly (the second lease shrinks to the 1 her
    limit leaves), bo 4, and the account's own uses the 2 left; every use is counted once, on its entity too."""
    _seats(tollgate, account=10, each=4)
    ana = LeasedQuota(tollgate, customer="team-1", feature="summaries", entity="ana", lease=3, flush_every=60)
    bo = LeasedQuota(tollgate, customer="team-1", feature="summaries", entity="bo", lease=3, flush_every=60)
    account = LeasedQuota(tollgate, customer="team-1", feature="summaries", lease=3, flush_every=60)
    assert [ana.consume(id=f"a{n}") for n in range(6)] == [True] * 4 + [False] * 2
    assert ana.consume(id="a1") is True  # the same id: nothing more used
    assert [bo.consume(id=f"b{n}") for n in range(5)] == [True] * 4 + [False]
    assert [account.consume(id=f"c{n}") for n in range(3)] == [True, True, False]
    check = tollgate.entitlements.check(customer="team-1", feature="summaries", entity="ana")
    assert (check.used + check.held, check.remaining, check.entity.used, check.entity.remaining) == (
        10,
        0,
        4,
        0,
    )
    for quota in (ana, bo, account):
        quota.close()
    assert UsageCounter.objects.values_list("used", "held").get() == (10, 0)
    assert _used() == {"ana": 4, "bo": 4}
    assert UsageEvent.objects.count() == 10
    assert set(Hold.objects.values_list("status", flat=True)) == {"released"}
    assert sorted(set(Hold.objects.values_list("entity", flat=True))) == ["", "ana", "bo"]


def test_leased_uses_of_an_entity_stop_at_its_own_window(tollgate, per_seat):
    """100 for the account, 40 a seat of which 5 a day: leases of 3 give ana 5 uses exactly (the second lease
    shrinks to the 2 her day leaves), bo his own 5; the seats' day windows hold exactly what each used."""
    _seats(tollgate, account=100, each=40, windows={"day": 5})
    ana = LeasedQuota(tollgate, customer="team-1", feature="summaries", entity="ana", lease=3, flush_every=60)
    bo = LeasedQuota(tollgate, customer="team-1", feature="summaries", entity="bo", lease=3, flush_every=60)
    assert [ana.consume(id=f"a{n}") for n in range(7)] == [True] * 5 + [False] * 2
    assert [bo.consume(id=f"b{n}") for n in range(6)] == [True] * 5 + [False]
    refused = tollgate.entitlements.check(customer="team-1", feature="summaries", entity="ana")
    assert (refused.allowed, refused.binding, refused.entity.binding, refused.remaining) == (
        False,
        "entity",
        "day",
        90,
    )
    for quota in (ana, bo):
        quota.close()
    assert sorted(EntityWindowCounter.objects.values_list("entity", "span", "used", "held")) == [
        ("ana", "day", 5, 0),
        ("bo", "day", 5, 0),
    ]
    assert UsageCounter.objects.values_list("used", "held").get() == (10, 0)
    assert UsageEvent.objects.count() == 10


@pytest.mark.postgres
@pytest.mark.parametrize("window", ["minute", "hour", "day", "week"])
def test_ten_processes_leasing_one_seat_are_allowed_its_windows_limit_exactly(
    tollgate, per_seat, live_server, tenant_a, window
):
    """A seat's own `window` of 40 (its period's and the account's limits far above): leases from ten processes,
    each consuming until refused, are allowed the window's 40 exactly, held in the seat's window counter."""
    _seats(tollgate, account=10_000, each=10_000, windows={window: 40})
    left = 60 - time.time() % 60
    if window == "minute" and left < 30:  # the whole race within one minute
        time.sleep(left + 0.5)
    processes = _consumers(
        live_server.url, tenant_a.key, 10, 3, customer="team-1", feature="summaries", entity="ana"
    )
    allowed = [int(process.communicate(timeout=300)[0]) for process in processes]
    assert sum(allowed) == 40
    assert EntityWindowCounter.objects.values_list("entity", "span", "used", "held").get() == (
        "ana",
        window,
        40,
        0,
    )
    assert _used() == {"ana": 40}
    assert UsageCounter.objects.values_list("used", "held").get() == (40, 0)
    assert UsageEvent.objects.count() == 40
    assert not Hold.objects.filter(status="active").exists()


@pytest.mark.postgres  # SQLite's test database refuses concurrent writers ("database table is locked")
def test_six_processes_leasing_two_seats_are_allowed_each_seats_limit_and_the_accounts_exactly(
    tollgate, per_seat, live_server, tenant_a
):
    """50 for the account, 30 a seat: three processes on ana and three on bo, each consuming until refused, are
    allowed 50 in all, neither seat more than 30; the entity counters hold exactly what each seat was allowed."""
    _seats(tollgate, account=50, each=30)
    processes = [
        *_consumers(
            live_server.url, tenant_a.key, 3, 4, customer="team-1", feature="summaries", entity="ana"
        ),
        *_consumers(
            live_server.url, tenant_a.key, 3, 4, customer="team-1", feature="summaries", name="q", entity="bo"
        ),
    ]
    allowed = [int(process.communicate(timeout=300)[0]) for process in processes]
    assert sum(allowed) == 50
    assert _used() == {"ana": sum(allowed[:3]), "bo": sum(allowed[3:])}
    assert max(_used().values()) <= 30
    assert UsageCounter.objects.values_list("used", "held").get() == (50, 0)
    assert UsageEvent.objects.count() == 50
    assert not Hold.objects.filter(status="active").exists()


def test_a_process_killed_holding_an_entitys_lease_gives_its_units_back_to_both_at_expiry(
    tollgate, per_seat, live_server, tenant_a
):
    """ana's lease of 10 (her limit 12, the account's 20), 3 used and reported when the process is killed: the 7
    unused stay taken from her limit and the account's until the expiry sweep gives them back to both."""
    _seats(tollgate, account=20, each=12)
    (process,) = _consumers(
        live_server.url, tenant_a.key, 1, 10, hang=3, customer="team-1", feature="summaries", entity="ana"
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "3"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert UsageCounter.objects.values_list("used", "held").get() == (10, 7)
    assert _used() == {"ana": 10}
    refused = tollgate.entitlements.check(customer="team-1", feature="summaries", quantity=3, entity="ana")
    assert (refused.allowed, refused.binding, refused.entity.remaining) == (False, "entity", 2)
    Hold.objects.update(expires_at=Hold.objects.get().created_at)  # its 30 s have passed
    time.sleep(0.01)
    assert holds_expire_sweep.delay().get() == 1
    assert UsageCounter.objects.values_list("used", "held").get() == (3, 0)
    assert _used() == {"ana": 3}
    check = tollgate.entitlements.check(customer="team-1", feature="summaries", quantity=9, entity="ana")
    assert (check.allowed, check.entity.used, check.entity.remaining, check.remaining) == (True, 3, 9, 17)
