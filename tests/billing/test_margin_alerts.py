"""Margin alerts (#54 point 4): `customer.margin_low` once per customer, UTC month and currency, when the customer's
margin this month (billing.services.margins, by customer) is below the project's `margin_alert_below_bps` — from
usage recorded through the API, priced by a cost table and billed by a graduated metered price."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection

from billing import tasks
from billing.models import MarginAlert
from billing.services import margin_alerts
from catalog.models import Feature
from customers.services.customers import customer_ensure_stripe
from entitlements.models import UsageEvent
from events.models import Event
from projects.models import Project
from tests.billing.test_meter_reports import billed
from tests.catalog import price_create, product_create
from tests.entitlements.helpers import customer, feature, product
from tests.entitlements.test_usage_dimensions import cost_table
from tests.events.factories import WebhookEndpointFactory

NOW = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)
# 2.5 µ$ an input token, 10 µ$ an output token (per million: $2.50 and $10).
GPT = {
    "input_tokens": {"micros": 2_500_000, "per": 1_000_000},
    "output_tokens": {"micros": 10_000_000, "per": 1_000_000},
}
# A unit per thousand input tokens and 4 per thousand output tokens.
RATES = {"type": "rates", "rates": {"input_tokens": "0.001", "output_tokens": "0.004"}}


def ok(response, status=200):
    assert response.status_code == status, response.json()
    return response.json()


def metered_tokens(api, tenant, currency="usd"):
    """`tokens` billed by a graduated metered price — the first 10 units of a month free, then 3¢ (30,000 µ$) a
    unit, in `currency` — to the customers subscribed to it; everyone may use it (the free product); calls priced
    by the cost table (in dollars)."""
    project = tenant.project
    feature(project, "tokens", Feature.Type.METERED)
    ok(api.patch("/api/v1/features/tokens", {"usage_formula": RATES}, key=tenant.key))
    price_create(
        product_create(project, "usage", "Usage"),
        "calls",
        None,
        currency=currency,
        interval="month",
        usage_type="metered",
        meter="tokens",
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=[{"up_to": 10, "unit_amount": 0}, {"up_to": "inf", "unit_amount": 3}],
    )
    product(project, "free", {Feature.objects.get(project=project, key="tokens"): None})
    project.default_product = "free"
    project.save()
    cost_table(api, tenant.key, {"gpt": GPT})


def subscribed(project, external_id):
    cust = billed(customer(project, external_id))
    customer_ensure_stripe(customer=cust)
    return cust


def use(api, tenant, event_id, who, input_tokens, output_tokens=0):
    body = {
        "id": event_id,
        "customer": who,
        "feature": "tokens",
        "model": "gpt",
        "dimensions": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }
    return ok(api.post("/api/v1/usage", body, key=tenant.key), 201)


def set_threshold(api, platform_key, project, value):
    body = ok(
        api.patch(f"/api/v1/projects/{project.slug}", {"margin_alert_below_bps": value}, key=platform_key)
    )
    assert body["margin_alert_below_bps"] == value


def announced(project=None):
    events = Event.objects.filter(type="customer.margin_low").order_by("project__slug", "sequence")
    if project is not None:
        events = events.filter(project=project)
    return [event.data["object"] for event in events]


def sweep(when=NOW):
    """The beat's task at `when` (its deliveries are queued on commit: not sent here)."""
    with time_machine.travel(when, tick=False):
        return tasks.margin_alerts_sweep()


def seed_month(api, tenant_a, tenant_b):
    """Two days before `NOW`, in project A: u1 profitable, u2's usage billed nothing (no subscription bills it),
    u3 billed a little more than its usage cost; in project B, b1 billed nothing."""
    with time_machine.travel(NOW - timedelta(days=2), tick=False):
        metered_tokens(api, tenant_a)
        metered_tokens(api, tenant_b)
        subscribed(tenant_a.project, "u1")
        subscribed(tenant_a.project, "u3")
        # u1: 2,000 in + 1,000 out → 6 units, 15,000 µ$; then 20 units (20,000 in), 50,000 µ$. 16 units billed past
        # the free 10: 480,000 µ$ for 65,000 µ$ of cost.
        assert use(api, tenant_a, "u1-a", "u1", 2000, 1000)["quantity"] == 6
        assert use(api, tenant_a, "u1-b", "u1", 20_000)["quantity"] == 20
        # u2: 15,000 µ$ of cost.
        assert use(api, tenant_a, "u2-a", "u2", 2000, 1000)["cost"]["micros"] == 15_000
        # u3: 10 free units (25,000 µ$ of cost), then 1 unit billed 30,000 µ$ for 2,500 µ$ of cost.
        use(api, tenant_a, "u3-a", "u3", 10_000)
        use(api, tenant_a, "u3-b", "u3", 1000)
        use(api, tenant_b, "b1-a", "b1", 2000, 1000)
    reported = UsageEvent.objects.filter(customer__external_id__in=["u1", "u3"])
    assert set(reported.values_list("meter_status", flat=True)) == {"reported"}


@pytest.fixture
def usage(api, tenant_a, tenant_b, platform_key, stripe_emulator):
    """`seed_month`, project A's threshold at 20 % (project B has none)."""
    seed_month(api, tenant_a, tenant_b)
    set_threshold(api, platform_key, tenant_a.project, 2000)


U2 = {
    "customer": "u2",
    "period": "2026-05",
    "currency": "usd",
    "billed_micros": 0,
    "cost_micros": 15_000,
    "margin_micros": -15_000,
    "margin_bps": None,
    "threshold_bps": 2000,
}
U3 = {
    "customer": "u3",
    "period": "2026-05",
    "currency": "usd",
    "billed_micros": 30_000,
    "cost_micros": 27_500,
    "margin_micros": 2_500,
    "margin_bps": 833,
    "threshold_bps": 2000,
}


def test_a_customer_below_the_threshold_is_announced_once(usage, tenant_a, tenant_b):
    endpoint = WebhookEndpointFactory(project=tenant_a.project, events=["customer.margin_low"])
    assert sweep() == 2
    assert sweep() == 0
    assert sweep(NOW + timedelta(hours=1)) == 0
    # u1's margin is 415,000 µ$ of 480,000 (86 %): not announced; u2 billed nothing for a cost: below any threshold.
    assert announced() == [U2, U3]
    assert announced(tenant_b.project) == []
    assert sorted(
        MarginAlert.objects.values_list(
            "project__slug", "customer__external_id", "period", "currency", "margin_bps", "threshold_bps"
        )
    ) == [("alpha", "u2", "2026-05", "usd", None, 2000), ("alpha", "u3", "2026-05", "usd", 833, 2000)]
    # Each announcement is delivered to the endpoint that asked for it.
    assert sorted(d.event.data["object"]["customer"] for d in endpoint.deliveries.all()) == ["u2", "u3"]


def test_the_next_month_is_announced_again_and_a_month_announced_stays_so(api, usage, tenant_a, platform_key):
    sweep()
    # The threshold raised: u1 (8,645 bps) is now below it, but May is announced for u2 and u3 only once.
    set_threshold(api, platform_key, tenant_a.project, 9000)
    assert sweep() == 1
    assert [(e["customer"], e["margin_bps"], e["threshold_bps"]) for e in announced()] == [
        ("u2", None, 2000),
        ("u3", 833, 2000),
        ("u1", 8645, 9000),
    ]
    # June: u2 uses again (billed nothing): announced for June.
    with time_machine.travel(datetime(2026, 6, 3, 9, tzinfo=UTC), tick=False):
        use(api, tenant_a, "u2-june", "u2", 1000)
    assert sweep(datetime(2026, 6, 3, 10, tzinfo=UTC)) == 1
    assert announced()[-1] == {
        **U2,
        "period": "2026-06",
        "cost_micros": 2_500,
        "margin_micros": -2_500,
        "threshold_bps": 9000,
    }


def test_nothing_is_announced_without_a_threshold(api, usage, tenant_a, platform_key):
    set_threshold(api, platform_key, tenant_a.project, None)
    assert sweep() == 0
    assert announced() == []
    assert not MarginAlert.objects.exists()


def test_a_threshold_below_every_margin_announces_nobody_else(api, usage, tenant_a, platform_key):
    """At −100 % only u2 (billed nothing for a cost) is below: u3's 8 % and u1's 86 % are above."""
    set_threshold(api, platform_key, tenant_a.project, -10_000)
    assert sweep() == 1
    assert [e["customer"] for e in announced()] == ["u2"]


def test_usage_of_the_last_hour_of_a_month_is_announced_on_the_next_days_first_run(
    api, tenant_a, platform_key, stripe_emulator
):
    with time_machine.travel(datetime(2026, 5, 31, 23, 45, tzinfo=UTC), tick=False):
        metered_tokens(api, tenant_a)
        use(api, tenant_a, "late", "u9", 2000, 1000)
    set_threshold(api, platform_key, tenant_a.project, 0)
    assert sweep(datetime(2026, 6, 1, 0, 29, tzinfo=UTC)) == 1
    assert announced() == [{**U2, "customer": "u9", "threshold_bps": 0}]
    assert sweep(datetime(2026, 6, 2, 0, 29, tzinfo=UTC)) == 0


def test_a_check_that_dies_before_its_commit_announces_on_the_next_run(usage, tenant_a, monkeypatch):
    """The alert's row and its event are one transaction: a worker killed after the insert leaves neither."""

    def killed(**_):
        raise SystemExit("worker killed")

    monkeypatch.setattr(margin_alerts, "event_record", killed)
    with pytest.raises(SystemExit), time_machine.travel(NOW, tick=False):
        margin_alerts.margin_alerts_check(project=Project.objects.get(pk=tenant_a.project.pk))
    assert not MarginAlert.objects.exists()
    monkeypatch.undo()
    assert sweep() == 2
    assert announced() == [U2, U3]


def test_a_failing_project_does_not_stop_the_others(usage, tenant_a, tenant_b, monkeypatch, caplog):
    Project.objects.filter(pk=tenant_b.project.pk).update(margin_alert_below_bps=0)
    real = margin_alerts.margin_alerts_check

    def check(*, project, now=None):
        if project.slug == "alpha":
            raise KeyError("broken data")
        return real(project=project, now=now)

    monkeypatch.setattr(margin_alerts, "margin_alerts_check", check)
    assert sweep() == 1
    assert [(e["customer"], e["threshold_bps"]) for e in announced()] == [("b1", 0)]
    assert "Margin alerts of project" in caplog.text


def test_a_cost_in_dollars_billed_in_euros_is_not_announced(api, tenant_b, platform_key, stripe_emulator):
    """No exchange rate: b2's usage cost $0.115 and was billed €1.08 (36 units past the free 10), two rows that
    cannot be compared. b1, billed nothing at all, is."""
    with time_machine.travel(NOW - timedelta(days=1), tick=False):
        metered_tokens(api, tenant_b, currency="eur")
        subscribed(tenant_b.project, "b2")
        use(api, tenant_b, "b2-a", "b2", 2000, 1000)
        use(api, tenant_b, "b2-b", "b2", 20_000, 5000)
        use(api, tenant_b, "b1-a", "b1", 2000, 1000)
    set_threshold(api, platform_key, tenant_b.project, 2000)
    report = margin_alerts.margins_report(
        project=tenant_b.project, start=NOW - timedelta(days=2), end=NOW, group_by=("customer",)
    )
    assert sorted((r.customer, r.currency, r.billed_micros, r.cost_micros) for r in report) == [
        ("b1", "usd", 0, 15_000),
        ("b2", "eur", 1_080_000, 0),
        ("b2", "usd", 0, 115_000),
    ]
    assert sweep() == 1
    assert announced() == [{**U2, "customer": "b1"}]


def test_a_suspended_project_is_not_checked(usage, tenant_a):
    Project.objects.filter(pk=tenant_a.project.pk).update(status=Project.Status.SUSPENDED)
    assert sweep() == 0
    assert announced() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_announce_once(tenant_a, monkeypatch):
    """Two checks racing: the second waits on the first's row (its insert, or its read of what was announced)
    and announces nothing."""
    project = tenant_a.project
    Project.objects.filter(pk=project.pk).update(margin_alert_below_bps=2000)
    cust = customer(project, "u2")
    tokens = feature(project, "tokens", Feature.Type.METERED)
    UsageEvent.objects.create(
        project=project,
        customer=cust,
        feature=tokens,
        event_id="u2-a",
        quantity=6,
        timestamp=NOW,
        meter_status="skipped",
        dimensions={"model": "gpt", "values": {"input_tokens": 2000}, "cost_table": 1, "currency": "usd"},
        cost_micros=15_000,
    )
    real = margin_alerts.event_record

    def slow(**kwargs):
        time.sleep(0.3)  # the first worker's row is inserted and not committed yet
        return real(**kwargs)

    monkeypatch.setattr(margin_alerts, "event_record", slow)
    barrier = threading.Barrier(2)
    results: list[int] = []

    def check() -> None:
        barrier.wait()
        try:
            results.append(
                margin_alerts.margin_alerts_check(
                    project=Project.objects.get(pk=project.pk), now=NOW + timedelta(hours=1)
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 1]
    assert announced() == [U2]
    assert MarginAlert.objects.count() == 1


def test_the_beat_runs_the_sweep_hourly_on_the_sweeps_queue():
    from celery.schedules import crontab

    from config.celery import app

    app.loader.import_default_modules()
    entry = app.conf.beat_schedule["check-margin-alerts"]
    assert (entry["task"], entry["schedule"]) == ("billing.tasks.margin_alerts_sweep", crontab(minute=29))
    assert "billing.tasks.margin_alerts_sweep" in app.tasks
    assert app.amqp.router.route({}, "billing.tasks.margin_alerts_sweep")["queue"].name == "celery"
