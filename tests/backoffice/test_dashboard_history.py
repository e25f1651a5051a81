"""The dashboard's month-by-month charts: revenue and MRR per currency, active subscriptions, churn and failed
payments, with exact values from seeded subscriptions and payments; one heading, the admin's own branding."""

import re
from datetime import UTC, datetime, timedelta

import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from backoffice import dashboard
from billing.models import Subscription
from billing.services.revenue_figures import revenue_figures_repair
from billing.services.revenue_report import month_start, next_month, revenue_months
from core.money import money_format
from customers.models import Customer
from customers.services.customers import customer_ensure_stripe
from tests.billing.factories import PriceFactory
from tests.billing.payment_factories import PaymentFactory, SubscriptionFactory

MONTHS = [f"2025-{m:02d}" for m in range(6, 13)] + [f"2026-{m:02d}" for m in range(1, 6)]


def _at(year, month, day):
    return datetime(year, month, day, 12, tzinfo=UTC)


def _subscription(project, price, *, created, quantity=1, status="active", canceled=None, trial_end=None):
    """A subscription as its events would have made it: created (trialing until `trial_end`), live from its
    start or its trial's end, cancelled at `canceled`. Each state is written directly and counted by the repair
    at that moment, as the mirror counts it when the event arrives."""

    def at(when, **fields):
        with time_machine.travel(when, tick=False):
            Subscription.objects.filter(pk=subscription.pk).update(**fields)
            revenue_figures_repair()

    with time_machine.travel(created, tick=False):
        subscription = SubscriptionFactory(
            project=project, price=price, quantity=quantity, status="trialing" if trial_end else status
        )
    at(created, created_at=created, trial_end=trial_end)
    if trial_end:
        at(trial_end, status=status)
    if canceled:
        at(canceled, status="canceled", canceled_at=canceled)


def _charts(html):
    """{chart title: {month: (value, tooltip)}} for every month that is not zero, and the axis labels."""
    charts = {}
    for title, body in re.findall(r'<figure class="tg-chart">\s*<h3>([^<]+)</h3>(.*?)</figure>', html, re.S):
        bars = re.findall(
            r'<g class="tg-month" data-month="([\d-]+)" data-value="(-?\d+)"><title>([^<]+)</title>', body
        )
        assert [month for month, _, _ in bars] == MONTHS, title
        ticks = re.findall(r'<text class="tg-tick"[^>]*>([^<]+)</text>', body)
        charts[title] = (
            {month: (int(value), tip) for month, value, tip in bars if value != "0"},
            ticks,
        )
    return charts


def test_the_dashboard_charts_each_month_per_currency(tenant_a, tenant_b, catalog):
    yen_monthly = PriceFactory(
        project=tenant_b.project, currency="jpy", unit_amount=500, type="recurring", interval="month"
    )
    project = tenant_a.project
    _subscription(project, catalog.pro_monthly, created=_at(2026, 1, 10), quantity=2)
    _subscription(project, catalog.pro_monthly, created=_at(2026, 2, 5), canceled=_at(2026, 4, 15))
    _subscription(project, catalog.pro_monthly, created=_at(2026, 3, 1), trial_end=_at(2026, 4, 10))
    _subscription(project, catalog.pro_monthly, created=_at(2026, 3, 2), status="incomplete_expired")
    _subscription(tenant_b.project, yen_monthly, created=_at(2026, 4, 2), quantity=3)
    for when, amount, currency, status, owner in [
        (_at(2026, 3, 3), 4900, "usd", "succeeded", project),
        (_at(2026, 5, 2), 500, "jpy", "succeeded", tenant_b.project),
        (_at(2026, 4, 1), 1500, "usd", "failed", project),
        (_at(2026, 4, 30), 1500, "usd", "failed", project),
        (_at(2026, 5, 19), 500, "jpy", "failed", tenant_b.project),
    ]:
        with time_machine.travel(when, tick=False):
            PaymentFactory(
                project=owner,
                amount=amount,
                currency=currency,
                status=status,
                succeeded_at=when if status == "succeeded" else None,
            )
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    with time_machine.travel(datetime(2026, 5, 20, 10, tzinfo=UTC), tick=False):
        # The payments were written directly too: counted by the repair the nightly beat runs.
        assert revenue_figures_repair() == 2
        html = client.get("/admin/dashboard/").content.decode()

    charts = _charts(html)
    assert charts == {
        "Net revenue per month (JPY)": ({"2026-05": (500, "2026-05: ¥500")}, ["¥0", "¥300", "¥600"]),
        "Net revenue per month (USD)": (
            {"2026-03": (4900, "2026-03: $49.00")},
            ["$0.00", "$30.00", "$60.00"],
        ),
        "MRR at the end of each month (JPY)": (
            {"2026-04": (1500, "2026-04: ¥1,500"), "2026-05": (1500, "2026-05: ¥1,500")},
            ["¥0", "¥1,000", "¥2,000"],
        ),
        "MRR at the end of each month (USD)": (
            {
                "2026-01": (6000, "2026-01: $60.00"),
                "2026-02": (9000, "2026-02: $90.00"),
                "2026-03": (9000, "2026-03: $90.00"),
                "2026-04": (9000, "2026-04: $90.00"),
                "2026-05": (9000, "2026-05: $90.00"),
            },
            ["$0.00", "$50.00", "$100.00"],
        ),
        "Active subscriptions at the end of each month": (
            {
                "2026-01": (1, "2026-01: 1"),
                "2026-02": (2, "2026-02: 2"),
                "2026-03": (2, "2026-03: 2"),
                "2026-04": (3, "2026-04: 3"),
                "2026-05": (3, "2026-05: 3"),
            },
            ["0", "2", "4"],
        ),
        "Subscriptions cancelled per month": ({"2026-04": (1, "2026-04: 1")}, ["0", "1"]),
        "Failed payments per month": (
            {"2026-04": (2, "2026-04: 2"), "2026-05": (1, "2026-05: 1")},
            ["0", "1", "2"],
        ),
    }
    # axes: the months under the bars, a value axis; one heading and the admin's branding
    assert re.findall(r'text-anchor="middle">(\w+)</text>', html)[:12] == [
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Oct",
        "Nov",
        "Dec",
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "May",
    ]
    assert re.findall(r"<h1[^>]*>([^<]*)</h1>", html) == ["Dashboard"]
    assert '<div id="site-name"><a href="/admin/">Tollgate back office</a></div>' in html
    assert "<title>Dashboard | Tollgate back office</title>" in html
    assert 'href="/api/docs/">View site</a>' in html
    # Nothing loaded from another host (a chart library from a CDN): every src and href is this site's. (A bare
    # "cdn" could be in the page's random CSRF token.)
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html)
    assert '<script src="http' not in html


def _subscribe(api, tenant, sdk, stripe_webhooks, external_id, price):
    """`external_id` subscribed to `price` through the API, paid at Stripe (the emulator) by card; its answer."""
    api.post("/api/v1/customers", {"external_id": external_id}, key=tenant.key)
    stripe_customer = customer_ensure_stripe(
        customer=Customer.objects.get(project=tenant.project, external_id=external_id)
    )
    card = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer}).id
    sdk.v1.customers.update(stripe_customer, {"invoice_settings": {"default_payment_method": card}})
    created = api.post("/api/v1/subscriptions", {"customer": external_id, "price": price}, key=tenant.key)
    assert created.status_code == 201, created.json()
    stripe_webhooks.deliver()
    return created.json()


def _earned_by(subscription, amount, day):
    """What `amount`, spread evenly over the subscription's period, has earned by the end of `day`."""
    start, end = (
        datetime.fromisoformat(subscription[name]).astimezone(UTC).date()
        for name in ("current_period_start", "current_period_end")
    )
    days = (end - start).days
    return amount * min(max((day - start).days + 1, 0), days) // days


def test_revenue_recognised_and_deferred_per_currency_summed_over_the_projects(
    api, tenant_a, tenant_b, catalog, catalog_b, stripe_sdk, stripe_webhooks, monkeypatch
):
    """Subscriptions paid at Stripe in two projects and two currencies: this month's share of each period is
    recognised, the rest deferred at the month's close; the dollars of both projects are summed, the euros
    charted apart. One report of the twelve months per project."""
    sdk = stripe_sdk()
    in_usd = [
        _subscribe(api, tenant_a, sdk, stripe_webhooks, "user-1", "pro-monthly"),
        _subscribe(api, tenant_b, sdk, stripe_webhooks, "user-1", "pro-monthly"),
    ]
    in_eur = _subscribe(api, tenant_b, sdk, stripe_webhooks, "user-2", "pro-monthly-eur")
    reports = []
    monkeypatch.setattr(
        dashboard,
        "revenue_months",
        lambda project, first, last: (
            reports.append((project.slug, first, last)) or revenue_months(project, first, last)
        ),
    )
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))

    html = client.get("/admin/dashboard/").content.decode()

    month = timezone.now().date().replace(day=1)
    close = next_month(month) - timedelta(days=1)
    year_ago = month
    for _ in range(11):
        year_ago = month_start(year_ago - timedelta(days=1))
    assert reports == [("alpha", year_ago, month), ("bravo", year_ago, month)]
    recognised = sum(_earned_by(subscription, 3000, close) for subscription in in_usd)
    recognised_eur = _earned_by(in_eur, 2800, close)
    charts = re.findall(
        r'<figure class="tg-chart tg-pairs">\s*<h3>([^<]+)</h3>\s*<p class="tg-legend">(.*?)</p>(.*?)</figure>',
        html,
        re.S,
    )
    assert [title for title, _, _ in charts] == [
        "Revenue recognised and deferred (EUR)",
        "Revenue recognised and deferred (USD)",
    ]
    assert re.sub(r"<[^>]+>", "", charts[0][1]) == "Recognised in the month Deferred at its close"
    bars = {
        title: re.findall(
            r'<g class="tg-series" data-series="(\d)" data-value="(-?\d+)"><title>([^<]+)</title>', body
        )
        for title, _, body in charts
    }
    assert all(len(series) == 24 for series in bars.values())  # two bars a month, twelve months
    # Before this month nothing was paid: every bar is zero, and says so.
    assert bars["Revenue recognised and deferred (USD)"][:2] == [
        ("1", "0", f"{year_ago:%Y-%m}, recognised in the month: $0.00"),
        ("2", "0", f"{year_ago:%Y-%m}, deferred at its close: $0.00"),
    ]
    expected = {
        "Revenue recognised and deferred (EUR)": [
            (
                "1",
                str(recognised_eur),
                f"{month:%Y-%m}, recognised in the month: {money_format(recognised_eur, 'eur')}",
            ),
            (
                "2",
                str(2800 - recognised_eur),
                f"{month:%Y-%m}, deferred at its close: {money_format(2800 - recognised_eur, 'eur')}",
            ),
        ],
        "Revenue recognised and deferred (USD)": [
            (
                "1",
                str(recognised),
                f"{month:%Y-%m}, recognised in the month: {money_format(recognised, 'usd')}",
            ),
            (
                "2",
                str(6000 - recognised),
                f"{month:%Y-%m}, deferred at its close: {money_format(6000 - recognised, 'usd')}",
            ),
        ],
    }
    # A bar of zero is left out on both sides (the deferred one when the period ends with the month: subscribed on
    # the 1st).
    assert {title: [bar for bar in series if bar[1] != "0"] for title, series in bars.items()} == {
        title: [bar for bar in series if bar[1] != "0"] for title, series in expected.items()
    }
    assert "No revenue recognised or deferred" not in html


def test_a_project_whose_revenue_report_cannot_be_read_is_named_and_the_page_still_shown(
    tenant_a, tenant_b, monkeypatch, caplog
):
    def report(project, first, last):
        if project.slug == "alpha":
            raise RuntimeError("a schedule out of shape")
        return revenue_months(project, first, last)

    monkeypatch.setattr(dashboard, "revenue_months", report)
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))

    page = client.get("/admin/dashboard/")

    assert page.status_code == 200
    html = page.content.decode()
    assert (
        '<p class="errornote">The revenue recognised and deferred of alpha could not be read (the error is in '
        "the log); they are left out.</p>"
    ) in html
    assert "<p>No revenue recognised or deferred in the last twelve months.</p>" in html
    assert "The revenue report of project" in caplog.text
