"""Leased consumption (`tollgate_client.leases.LeasedQuota`) against a live server: uses answered from memory
add up to the limit exactly — in one process, and in a race of client processes on one customer — every use's
id is counted once, and a process killed with kill -9 gives its lease's unused units back at its expiry."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tollgate_client.leases import LeasedQuota

from entitlements.models import Hold, UsageCounter, UsageEvent
from entitlements.tasks import holds_expire_sweep
from tests.connection_races import one_race_at_a_time

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def limit_of(tollgate, plans, live_server, platform_key):
    """A plan giving `exports` a limit of n, subscribed to by user-1 (a grant on the default product's 3)."""

    def set_limit(n: int) -> None:
        tollgate.entitlements.grants.create(customer="user-1", feature="exports", value=n - 3, reason="test")

    return set_limit


def test_uses_from_leases_add_up_to_the_limit_and_each_id_counts_once(tollgate, limit_of):
    limit_of(12)
    quota = LeasedQuota(tollgate, customer="user-1", feature="exports", lease=5, flush_every=60)
    allowed = [quota.consume(id=f"u{n}") for n in range(14)]
    assert allowed == [True] * 12 + [False] * 2
    assert quota.consume(id="u3") is True  # the same id: nothing more used
    check = tollgate.entitlements.check(customer="user-1", feature="exports")
    assert (check.used + check.held, check.remaining) == (12, 0)  # some reported, the rest held
    quota.close()
    assert UsageCounter.objects.values_list("used", "held").get() == (12, 0)
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == sorted(f"u{n}" for n in range(12))
    assert set(Hold.objects.values_list("status", flat=True)) == {"released"}
    assert sum(Hold.objects.values_list("consumed", flat=True)) == 12


def _consumers(
    url: str,
    key: str,
    count: int,
    lease: int,
    hang: int = 0,
    customer: str = "user-1",
    feature: str = "exports",
    name: str = "p",
    entity: str | None = None,
) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.clients.lease_consumer",
                url,
                key,
                customer,
                feature,
                f"{name}{n}",
                str(lease),
                str(hang),
                *([entity] if entity is not None else []),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'clients' / 'python'}"},
        )
        for n in range(count)
    ]


@pytest.mark.postgres  # SQLite's test database refuses concurrent writers ("database table is locked")
def test_four_processes_racing_on_one_customer_are_allowed_the_limit_exactly(
    tollgate, limit_of, live_server, tenant_a
):
    limit_of(60)
    processes = _consumers(live_server.url, tenant_a.key, 4, lease=7)
    allowed = [int(process.communicate(timeout=120)[0]) for process in processes]
    assert sum(allowed) == 60
    assert UsageCounter.objects.values_list("used", "held").get() == (60, 0)
    assert UsageEvent.objects.count() == 60
    assert not Hold.objects.filter(status="active").exists()


@pytest.mark.postgres
def test_fifty_processes_racing_on_one_customer_are_allowed_the_limit_exactly(
    tollgate, limit_of, live_server, tenant_a
):
    limit_of(500)
    with one_race_at_a_time():
        processes = _consumers(live_server.url, tenant_a.key, 50, lease=4)
        allowed = [int(process.communicate(timeout=300)[0]) for process in processes]
    assert sum(allowed) == 500
    assert UsageCounter.objects.values_list("used", "held").get() == (500, 0)
    assert UsageEvent.objects.count() == 500


def test_a_process_killed_with_kill_9_gives_its_unused_units_back_at_expiry(
    tollgate, limit_of, live_server, tenant_a
):
    limit_of(20)
    (process,) = _consumers(live_server.url, tenant_a.key, 1, lease=10, hang=3)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "3"  # 3 used and reported; 7 leased, unused
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert UsageCounter.objects.values_list("used", "held").get() == (10, 7)
    Hold.objects.update(expires_at=Hold.objects.get().created_at)  # its 30 s have passed
    time.sleep(0.01)
    assert holds_expire_sweep.delay().get() == 1
    assert UsageCounter.objects.values_list("used", "held").get() == (3, 0)
    check = tollgate.entitlements.check(customer="user-1", feature="exports")
    assert (check.used, check.held, check.remaining) == (3, 0, 17)


def test_a_leased_use_whose_id_another_customer_used_is_lost_and_the_others_are_counted(tollgate, limit_of):
    limit_of(12)
    assert tollgate.entitlements.consume(id="taken", customer="user-2", feature="exports").allowed is True
    quota = LeasedQuota(tollgate, customer="user-1", feature="exports", lease=5, flush_every=60)
    assert [quota.consume(id=use) for use in ("a", "taken", "b")] == [True, True, True]
    quota.close()
    assert quota.lost == 1  # Tollgate refused it (409 idempotency_id_reused): it names user-2's use
    events = UsageEvent.objects.order_by("event_id").values_list(
        "event_id", "customer__external_id", "properties"
    )
    assert list(events) == [
        ("a", "user-1", {"hold": Hold.objects.get().hold_id}),
        ("b", "user-1", {"hold": Hold.objects.get().hold_id}),
        ("taken", "user-2", {}),
    ]
    assert list(Hold.objects.values_list("status", "consumed")) == [("released", 2)]


@pytest.mark.postgres
@pytest.mark.parametrize("window", ["minute", "hour", "day", "week"])
def test_twenty_processes_racing_on_one_window_are_allowed_its_limit_exactly(live_server, tenant_a, window):
    """A metered feature limited to 40 a `window` (its period's limit far above): leases from twenty processes,
    each consuming until refused, are allowed the window's 40 exactly, and every lease was used within it."""
    from catalog.models import Feature
    from entitlements.models import UsageWindowCounter
    from tests.entitlements.helpers import customer, feature, product, subscribe

    searches = feature(tenant_a.project, "searches", Feature.Type.METERED)
    subscribe(
        customer(tenant_a.project, "user-30"),
        product(tenant_a.project, "search-plan", {searches: {"limit": 10_000, "windows": {window: 40}}}),
    )
    with one_race_at_a_time():
        left = 60 - time.time() % 60
        if window == "minute" and left < 30:  # the whole race within one minute
            time.sleep(left + 0.5)
        processes = _consumers(
            live_server.url, tenant_a.key, 20, lease=3, customer="user-30", feature="searches"
        )
        allowed = [int(process.communicate(timeout=300)[0]) for process in processes]
    assert sum(allowed) == 40
    assert UsageWindowCounter.objects.values_list("span", "used", "held").get() == (window, 40, 0)
    assert UsageCounter.objects.values_list("used", "held").get() == (40, 0)
    assert UsageEvent.objects.count() == 40
    assert not Hold.objects.filter(status="active").exists()


@pytest.mark.postgres
def test_ten_processes_racing_on_a_credits_waterfall_are_allowed_the_allowance_and_the_credits_exactly(
    live_server, tenant_a, tollgate
):
    """A metered limit of 20 whose use past it is paid with credits (30, 1 a unit) and then refused: leases from
    ten processes, each consuming until refused, are allowed 50 exactly — a lease past the allowance shrinks to
    what the credits pay for — and every credit was spent once, none billed."""
    from catalog.models import Feature
    from entitlements.models import CreditLot
    from tests.entitlements.helpers import customer, feature, product, subscribe

    summaries = feature(tenant_a.project, "summaries", Feature.Type.METERED)
    feature(tenant_a.project, "tokens", Feature.Type.CREDITS)
    value = {"limit": 20, "credits": {"feature": "tokens"}}
    subscribe(customer(tenant_a.project, "user-31"), product(tenant_a.project, "paid", {summaries: value}))
    tollgate.entitlements.grants.create(customer="user-31", feature="tokens", value=30, reason="top-up")
    processes = _consumers(
        live_server.url, tenant_a.key, 10, lease=4, customer="user-31", feature="summaries"
    )
    allowed = [int(process.communicate(timeout=300)[0]) for process in processes]
    assert sum(allowed) == 50
    assert UsageCounter.objects.values_list("used", "held", "covered").get() == (50, 0, 30)
    assert sum(CreditLot.objects.values_list("remaining", flat=True)) == 0
    assert UsageEvent.objects.count() == 50
    assert sum(UsageEvent.objects.values_list("covered", flat=True)) == 30
    assert not Hold.objects.filter(status="active").exists()


def test_a_process_killed_holding_a_waterfall_lease_gives_its_credits_back_at_expiry(
    live_server, tenant_a, tollgate
):
    """A lease past the allowance holds credits: killed with kill -9 after using 3 of its 6 units (2 from the
    allowance, 1 paid with 2 credits), the process leaves 3 paid units held; the expiry sweep gives their 6
    credits back to the balance and keeps what was used."""
    from catalog.models import Feature
    from entitlements.models import CreditLot
    from tests.entitlements.helpers import customer, feature, product, subscribe

    summaries = feature(tenant_a.project, "summaries", Feature.Type.METERED)
    feature(tenant_a.project, "tokens", Feature.Type.CREDITS)
    value = {"limit": 2, "credits": {"feature": "tokens", "cost": 2}}
    subscribe(customer(tenant_a.project, "user-32"), product(tenant_a.project, "paid", {summaries: value}))
    tollgate.entitlements.grants.create(customer="user-32", feature="tokens", value=20, reason="top-up")
    (process,) = _consumers(
        live_server.url, tenant_a.key, 1, lease=6, hang=3, customer="user-32", feature="summaries"
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "3"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert UsageCounter.objects.values_list("used", "held", "covered").get() == (6, 3, 4)
    assert sum(CreditLot.objects.values_list("remaining", flat=True)) == 12
    Hold.objects.update(expires_at=Hold.objects.get().created_at)  # its 30 s have passed
    time.sleep(0.01)
    assert holds_expire_sweep.delay().get() == 1
    assert UsageCounter.objects.values_list("used", "held", "covered").get() == (3, 0, 1)
    assert sum(CreditLot.objects.values_list("remaining", flat=True)) == 18
    check = tollgate.entitlements.check(customer="user-32", feature="summaries")
    assert (check.used, check.remaining, check.credits.balance, check.credits.covered) == (3, 0, 18, 1)


@pytest.mark.postgres
def test_processes_leasing_two_features_under_one_account_cap_bill_it_exactly(
    live_server, tenant_a, tollgate, stripe_emulator
):
    """An account cap of 30 cents over calls (2 cents each past their limit) and tokens (1 cent past theirs), both
    at their limits: leases from six processes, three on each feature, each consuming until refused, bill the 30
    cents exactly — a lease shrinks to the units the cap leaves its feature — and nothing stays held."""
    from tests.entitlements.test_account_caps import billed_plan

    billed_plan(tenant_a.project, "user-32")
    tollgate.entitlements.spend_caps.set(customer="user-32", cap={"amount": 30, "currency": "usd"})
    tollgate.entitlements.consume(id="c0", customer="user-32", feature="api_calls", quantity=100)
    tollgate.entitlements.consume(id="t0", customer="user-32", feature="tokens", quantity=1000)
    processes = [
        *_consumers(live_server.url, tenant_a.key, 3, 3, customer="user-32", feature="api_calls", name="c"),
        *_consumers(live_server.url, tenant_a.key, 3, 3, customer="user-32", feature="tokens", name="t"),
    ]
    allowed = [int(process.communicate(timeout=300)[0]) for process in processes]
    counters = dict(UsageCounter.objects.values_list("feature__key", "used"))
    assert (counters["api_calls"] - 100, counters["tokens"] - 1000) == (sum(allowed[:3]), sum(allowed[3:]))
    assert 2 * sum(allowed[:3]) + sum(allowed[3:]) == 30
    assert UsageEvent.objects.count() == 2 + sum(allowed)
    assert not Hold.objects.filter(status="active").exists()


def test_a_process_killed_holding_a_lease_under_an_account_cap_frees_its_share_at_expiry(
    live_server, tenant_a, tollgate, stripe_emulator
):
    """Calls at their limit, 2 cents each past it, under an account cap of 20 cents: a process killed with kill -9
    after using 3 of its 10 leased calls leaves the whole cap taken (6 cents used, 14 held), so tokens (1 cent past
    their limit) get none; the expiry sweep gives the 7 unused calls back, and the 14 cents are the tokens' to use."""
    from tests.entitlements.test_account_caps import billed_plan

    billed_plan(tenant_a.project, "user-33")
    tollgate.entitlements.spend_caps.set(customer="user-33", cap={"amount": 20, "currency": "usd"})
    tollgate.entitlements.consume(id="c0", customer="user-33", feature="api_calls", quantity=100)
    tollgate.entitlements.consume(id="t0", customer="user-33", feature="tokens", quantity=1000)
    (process,) = _consumers(
        live_server.url, tenant_a.key, 1, lease=10, hang=3, customer="user-33", feature="api_calls"
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "3"
    process.send_signal(signal.SIGKILL)
    process.wait()
    tokens = tollgate.entitlements.check(customer="user-33", feature="tokens")
    assert (tokens.allowed, tokens.binding, tokens.account_cap.left_units) == (False, "account_cap", 0)
    Hold.objects.update(expires_at=Hold.objects.get().created_at)  # its 30 s have passed
    time.sleep(0.01)
    assert holds_expire_sweep.delay().get() == 1
    tokens = tollgate.entitlements.check(customer="user-33", feature="tokens", quantity=14)
    assert (tokens.allowed, tokens.account_cap.used_amount, tokens.account_cap.left_units) == (True, 6, 14)
    assert tollgate.entitlements.consume(id="t1", customer="user-33", feature="tokens", quantity=14).allowed
    calls = tollgate.entitlements.check(customer="user-33", feature="api_calls")
    assert (calls.used, calls.held, calls.allowed, calls.binding) == (103, 0, False, "account_cap")


def test_a_lease_of_pay_as_you_go_use_shrinks_to_what_the_account_cap_leaves(
    live_server, tenant_a, tollgate, stripe_emulator
):
    """Calls without a limit, 2 cents each, under an account cap of 50 cents, 20 calls used: a lease of 10 is
    refused and shrinks to the 5 calls the cap leaves; the sixth use is refused, and 25 calls are counted."""
    from tests.entitlements.test_account_cap_pay_as_you_go import pay_as_you_go_plan

    pay_as_you_go_plan(tenant_a.project, "user-34")
    tollgate.entitlements.spend_caps.set(customer="user-34", cap={"amount": 50, "currency": "usd"})
    tollgate.entitlements.consume(id="c0", customer="user-34", feature="api_calls", quantity=20)
    quota = LeasedQuota(tollgate, customer="user-34", feature="api_calls", lease=10, flush_every=60)
    allowed = [quota.consume(id=f"u{n}") for n in range(7)]
    assert allowed == [True] * 5 + [False] * 2
    quota.close()
    assert UsageCounter.objects.values_list("used", "held").get() == (25, 0)
    assert UsageEvent.objects.count() == 6
    check = tollgate.entitlements.check(customer="user-34", feature="api_calls")
    assert (check.allowed, check.binding, check.account_cap.used_amount) == (False, "account_cap", 50)
