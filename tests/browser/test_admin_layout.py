"""The back office on a 1366×768 screen, in a real browser: every list fits (no column pushed off the page, such
as the customers' "explain" link) without breaking a word in the middle, status labels are readable (WCAG AA
contrast, computed from the colours the browser actually paints), "View site" leads somewhere real, the
dashboard's charts show a value on hover, and detail pages read as words and money.

Screenshots of the dashboard (and its least profitable customers), the payments list and a customer's page are
written to $TOLLGATE_SCREENSHOTS (when set) for people to look at.
"""

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.db import connections
from django.utils import timezone
from playwright.sync_api import Page, sync_playwright

from billing.models import (
    BalanceTransaction,
    Drift,
    Invoice,
    JournalEntry,
    LateUsageCharge,
    Payment,
    ReconciliationRun,
    Refund,
    Subscription,
)
from billing.services.journal import journal_fee, journal_payment
from catalog.models import Feature, Price, ProductAccess
from core.models import AuditLogEntry
from entitlements.models import (
    CreditLedgerEntry,
    CreditLot,
    EntitlementSettings,
    Entity,
    EntityCounter,
    PlanCreditSlice,
    PlanPeriod,
    UsageEvent,
)
from events.models import Delivery
from tests.billing.payment_factories import (
    CartFactory,
    CheckoutSessionFactory,
    CustomerFactory,
    PaymentFactory,
)
from tests.billing.test_meter_reports import billed
from tests.browser.test_operator_journey import CHROMIUM, CHROMIUM_ARGS
from tests.catalog import price_create, product_create
from tests.costs.factories import CostTableFactory
from tests.entitlements.correction_factories import UsageCorrectionFactory
from tests.entitlements.factories import FeatureFactory, ProductFeatureFactory
from tests.entitlements.grant_factories import GrantFactory, RevocationFactory
from tests.entitlements.hold_factories import HoldFactory
from tests.entitlements.recharge_factories import AutoRechargeFactory
from tests.entitlements.threshold_factories import SpendCapFactory, UsageThresholdFactory
from tests.events.factories import EventFactory, WebhookEndpointFactory
from webhooks.models import StripeEvent, StripeWebhookEndpoint

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"Debian's chromium is not installed at {CHROMIUM}"
    ),
]


@pytest.fixture
def page(live_server, monkeypatch) -> Iterator[Page]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(base_url=live_server.url, viewport={"width": 1366, "height": 768})
            tab.set_default_timeout(60_000)
            yield tab
        finally:
            browser.close()
            connections.close_all()


def _log_in(page: Page) -> None:
    User.objects.create_superuser("root-op", password="correct horse battery")
    page.goto("/admin/login/")
    page.fill("#id_username", "root-op")
    page.fill("#id_password", "correct horse battery")
    page.click("input[type=submit]")


def _shoot(page: Page, name: str) -> None:
    folder = os.environ.get("TOLLGATE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=False)


def _seed(tenant, catalog) -> dict[str, str]:
    """A row, with long realistic values, in every list of the back office."""
    project = tenant.project
    customer = CustomerFactory(
        project=project,
        external_id="user-4f1c2a9e-7b3d-4e8a-9c61-2d5f0b7a8e13",
        email="a.very.long.address.for.testing@customer-domain.example.com",
        currency="usd",
        stripe_customer_id="cus_QxR7aLm2Pz9KfT4uWv",
    )
    payment = PaymentFactory(
        project=project,
        customer=customer,
        amount=4900,
        status="requires_payment_method",
        reference="order-2026-05-000123456",
        stripe_payment_intent_id="pi_3PQxR7aLm2Pz9KfT1a2b3c4d",
    )
    paid = PaymentFactory(
        project=project,
        customer=customer,
        amount=123456,
        status="succeeded",
        type="subscription",
        succeeded_at=timezone.now(),
    )
    journal_payment(paid)  # its journal entry, as the payment's transition posts it
    journal_fee(
        BalanceTransaction.objects.create(
            project=project,
            stripe_balance_transaction_id="txn_3PQxR7aLm2Pz9KfT0q1w2e3r",
            type="charge",
            reporting_category="charge",
            status="pending",
            source="ch_3PQxR7aLm2Pz9KfT1a2b3c4d",
            payment_intent="pi_3PQxR7aLm2Pz9KfT9z8y7x6w",
            currency="usd",
            amount=123456,
            fee=3610,
            net=119846,
            fee_details=[
                {
                    "amount": 3610,
                    "application": None,
                    "currency": "usd",
                    "description": "Stripe processing fees",
                    "type": "stripe_fee",
                }
            ],
            created_at=timezone.now(),
            available_on=timezone.now() + timedelta(days=2),
        )
    )
    PaymentFactory(project=project, customer=customer, amount=1500, status="failed")
    PaymentFactory(  # an auto-recharge's charge: its reference is one long token
        project=project,
        customer=customer,
        amount=1500,
        type="one_time",
        flow="off_session",
        reference="auto_recharge:arc_o5O6yI4nD9hXHdwKj9NSKcKD:1",
    )
    subscription = Subscription.objects.create(
        project=project,
        customer=customer,
        price=catalog.pro_monthly,
        product=catalog.pro,
        status="past_due",
        current_period_end=timezone.now() + timedelta(days=20),
        stripe_subscription_id="sub_1PQxR7aLm2Pz9KfTabcdefgh",
    )
    Invoice.objects.create(
        project=project,
        customer=customer,
        subscription=subscription,
        stripe_invoice_id="in_1PQxR7aLm2Pz9KfTabcdefgh",
        number="A1B2C3D4-0001",
        status="paid",
        currency="usd",
        total=3000,
        amount_paid=3000,
        period_end=timezone.now(),
    )
    Refund.objects.create(
        project=project,
        payment=payment,
        amount=900,
        currency="usd",
        status="succeeded",
        stripe_refund_id="re_layout",
    )
    CheckoutSessionFactory(
        project=project, payment=payment, customer=customer, stripe_session_id="cs_test_" + "a1" * 30
    )
    CartFactory(project=project, customer=customer)
    run = ReconciliationRun.objects.create(project=project, status="completed", checked=120, drift_count=1)
    Drift.objects.create(
        run=run,
        project=project,
        kind="mismatch",
        object_type="subscription",
        stripe_id="sub_1PQxR7aLm2Pz9KfTabcdefgh",
        local_id=subscription.pk,
        field="current_period_end",
        local_value="2026-05-20T10:00:00+00:00",
        stripe_value="2026-06-20T10:00:00+00:00",
    )
    seats = FeatureFactory(
        project=project, key="seats-per-workspace", name="Seats per workspace", type="allocation"
    )
    ProductFeatureFactory(product=catalog.pro, feature=seats, value=25)
    GrantFactory(project=project, customer=customer, feature=seats, value=5, reason="ticket 4711: goodwill")
    RevocationFactory(project=project, customer=customer, feature=seats, reason="chargeback under review")
    UsageEvent.objects.create(
        project=project,
        customer=customer,
        feature=seats,
        event_id="evt-2026-05-20-user-4f1c2a9e-000001",
        quantity=3,
        timestamp=timezone.now(),
        meter_status="pending",
    )
    UsageEvent.objects.create(
        project=project,
        customer=customer,
        feature=seats,
        event_id="evt-2026-05-20-user-4f1c2a9e-000002",
        quantity=68,
        timestamp=timezone.now(),
        dimensions={
            "model": "gpt-4o-2024-08-06",
            "values": {"input_tokens": 10_000, "output_tokens": 2_000},
            "cost_table": 1,
            "currency": "usd",
        },
        cost_micros=45_000,
    )
    UsageCorrectionFactory(
        project=project,
        customer=customer,
        feature=FeatureFactory(project=project, key="api-calls", name="API calls", type="metered"),
        correction_id="fix-2026-05-20-retry-loop",
        event_id="evt-2026-05-20-user-4f1c2a9e-000003",
        action="amend",
        quantity_before=40,
        quantity_after=4,
        meter="adjusted",
        reason="a retry loop sent 40 for 4",
    )
    LateUsageCharge.objects.create(
        project=project,
        customer=customer,
        feature=Feature.objects.get(project=project, key="api-calls"),
        usage_event_id="use_7Hq2LmX9aB4cD8eF1gJ3kN",
        event_id="evt-2026-05-20-user-4f1c2a9e-000007",
        period_end=datetime(2026, 6, 1, tzinfo=UTC),
        quantity=1250,
        amount=2500,
        currency="usd",
        status="created",
        stripe_invoice_item="ii_1QxR7aLm2Pz9KfT4uWvYz0Ab",
    )
    CostTableFactory(project=project, version=1)
    lot = CreditLot.objects.create(
        project=project, customer=customer, feature=seats, source="grant", amount=1000, remaining=250
    )
    CreditLedgerEntry.objects.create(
        project=project,
        customer=customer,
        feature=seats,
        lot=lot,
        type="consume",
        amount=-750,
        reference="consume-2026-05-20-000001",
    )
    # A yearly plan's monthly credits: one month granted (with its lot), one stopped by the subscription's end.
    period = PlanPeriod.objects.create(
        project=project,
        customer=customer,
        payment_id="pay_0gtfi3IytVSyfOM8V4PRg48j",
        invoice_id="inv_0gtfi3IytVSyfOM8V4PRg48j",
        subscription_id="sub_1PQxR7aLm2Pz9KfTabcdefgh",
        period_start=timezone.now() - timedelta(days=40),
        period_end=timezone.now() + timedelta(days=325),
    )
    for index, stopped in ((0, False), (1, True)):
        PlanCreditSlice.objects.create(
            project=project,
            customer=customer,
            feature=seats,
            plan_period=period,
            index=index,
            starts_at=period.period_start + timedelta(days=31 * index),
            ends_at=period.period_start + timedelta(days=31 * (index + 1)),
            amount=1000,
            rollover=200,
            lot=None if stopped else lot,
            granted_at=None if stopped else period.period_start,
            stopped_at=timezone.now() if stopped else None,
            stop_reason="the subscription ended" if stopped else "",
        )
    HoldFactory(
        project=project,
        customer=customer,
        feature=seats,
        id="hold_layout1",
        hold_id="render-job-2026-05-20-user-4f1c2a9e-000001",
        quantity=3,
    )
    HoldFactory(
        project=project,
        customer=customer,
        feature=seats,
        id="hold_layout2",
        hold_id="render-job-2026-05-20-user-4f1c2a9e-000002",
        quantity=12,
        confirmed=12,
        overrun=7,
        status="confirmed",
        ended_at=timezone.now(),
    )
    UsageThresholdFactory(project=project, customer=customer, kind="quantity", value=250_000)
    SpendCapFactory(project=project, customer=customer, cap={"amount": 5_000_000, "at_cap": "alert"})
    account_cap = {"amount": 30_000_000, "currency": "usd", "at_cap": "block"}
    SpendCapFactory(project=project, customer=customer, feature=None, cap=account_cap)
    workspaces = FeatureFactory(project=project, key="workspaces", type="allocation")
    summaries = FeatureFactory(project=project, key="meeting_summaries", type="metered")
    Entity.objects.create(
        id="ent_0gtfi3IytVSyfOM8V4PRg48k",
        project=project,
        customer=customer,
        feature=workspaces,
        external_id="workspace-7f3c9a1e-design-team",
        name="Design team (Lisbon office)",
    )
    EntityCounter.objects.create(
        project=project,
        customer=customer,
        feature=summaries,
        entity="workspace-7f3c9a1e-design-team",
        period_start=timezone.now() - timedelta(days=3),
        period_end=timezone.now() + timedelta(days=27),
        used=1_250,
    )
    AutoRechargeFactory(
        project=project,
        customer=customer,
        feature=seats,
        price=catalog.credit_pack,
        below=250_000,
        quantity=4,
        status="failed",
        attempt=3,
        payment_id="pay_0gtfi3IytVSyfOM8V4PRg48i",
        last_error="insufficient_funds",
        recharged_at=timezone.now(),
    )
    EntitlementSettings.objects.create(project=project)
    ProductAccess.objects.create(product=catalog.credits, duration_days=365)
    StripeEvent.objects.create(
        account=project.pk,
        project=project,
        stripe_event_id="evt_1PQxR7aLm2Pz9KfTabcdefgh",
        type="customer.subscription.updated",
        payload={},
        status="failed",
        attempts=5,
        stripe_created=int(timezone.now().timestamp()),
    )
    StripeWebhookEndpoint.objects.create(
        account="platform",
        url="https://billing.example.com/stripe/webhook",
        stripe_endpoint_id="we_1PQxR7aLm2Pz9K",
    )
    endpoint = WebhookEndpointFactory(
        project=project, url="https://hooks.customer-domain.example.com/tollgate/events"
    )
    event = EventFactory(project=project, type="entitlements.updated")
    Delivery.objects.create(project=project, event=event, endpoint=endpoint, status="failed", attempts=3)
    AuditLogEntry.objects.create(
        project_id=project.pk,
        actor_type="user",
        actor_repr="ops-anna@company.example.com",
        action="entitlement.granted",
        target_type="grant",
        target_id="grant_01HZX4Q8Y7N3K2M1P0R9S8T7V6",
        reason="ticket 4711: the customer paid by wire transfer, access until the invoice clears",
    )
    return {"customer": customer.pk, "payment": payment.pk}


def _seed_recognition(project, catalog) -> None:
    """Paid invoices of the last twelve months: a $49.00 plan each calendar month, paid on its first day, and a
    yearly plan of $1,200.00 paid six months ago, earned day by day over its year (deferred as it goes)."""
    customer = CustomerFactory(project=project, external_id="northwind-traders")
    month = timezone.now().astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    firsts = [month]
    for _ in range(11):
        firsts.insert(0, (firsts[0] - timedelta(days=1)).replace(day=1))

    def paid(key: str, start: datetime, end: datetime, amount: int) -> None:
        line = {"amount": amount, "stripe_price_id": catalog.pro_monthly.stripe_price_id}
        Invoice.objects.create(
            project=project,
            customer=customer,
            stripe_invoice_id=f"in_recognition_{key}",
            number=f"NW-{key}",
            status="paid",
            currency="usd",
            total=amount,
            amount_paid=amount,
            paid_at=start,
            period_end=end,
            lines=[{**line, "period_start": int(start.timestamp()), "period_end": int(end.timestamp())}],
        )

    for first in firsts:
        paid(f"{first:%Y%m}", first, (first + timedelta(days=32)).replace(day=1), 4900)
    yearly = firsts[5]
    paid("yearly", yearly, yearly.replace(year=yearly.year + 1), 120000)


def _seed_margins(project) -> None:
    """This month's model calls of a few more customers, priced by the cost table: three billed by a metered price
    (3¢ a unit), one not billed at all (besides `_seed`'s customer, whose call cost $0.045)."""
    tokens = FeatureFactory(project=project, key="tokens", name="Tokens", type="metered")
    price_create(
        product_create(project, "usage", "Usage"),
        "calls",
        3,
        interval="month",
        usage_type="metered",
        meter="tokens",
    )
    for external_id, units, cost in (
        ("acme-research", 400, 3_100_000),
        ("globex-labs", 100, 3_750_000),
        ("initech", 0, 1_250_000),
        ("hooli-ml", 50, 400_000),
    ):
        customer = CustomerFactory(project=project, external_id=external_id)
        if units:
            billed(customer)
        UsageEvent.objects.create(
            project=project,
            customer=customer,
            feature=tokens,
            event_id=f"call-{external_id}",
            quantity=units or 30,
            timestamp=timezone.now(),
            meter_status="reported" if units else "skipped",
            dimensions={"model": "gpt-4o", "values": {"input_tokens": 1}, "cost_table": 1, "currency": "usd"},
            cost_micros=cost,
        )


# The words (runs of letters and digits) of the list's cells that the browser laid out over two lines.
_WORDS_BROKEN_ACROSS_LINES = """() => {
    const broken = [];
    for (const cell of document.querySelectorAll('#result_list td, #result_list tbody th')) {
        const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            for (const match of node.data.matchAll(/[A-Za-z0-9]+/g)) {
                const range = document.createRange();
                range.setStart(node, match.index);
                range.setEnd(node, match.index + match[0].length);
                const lines = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
                if (lines.size > 1) broken.push(match[0]);
            }
        }
    }
    return broken;
}"""


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(one: str, two: str) -> float:
    a, b = (_luminance(tuple(int(v) for v in re.findall(r"\d+", color)[:3])) for color in (one, two))  # type: ignore[arg-type]
    light, dark = max(a, b), min(a, b)
    return (light + 0.05) / (dark + 0.05)


def test_every_list_fits_1366_pixels_with_readable_status_labels(page, tenant_a, catalog):
    _seed(tenant_a, catalog)
    _log_in(page)
    overflowing = []
    broken_words: list[str] = []
    badges = {}
    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        page.goto(url)
        if not page.locator("#result_list").count():
            continue  # no rows (Django's own users and groups: one user, no group)
        sizes = page.evaluate(
            """() => {
                const table = document.querySelector('#result_list');
                const box = table.closest('.results');
                return {table: table.scrollWidth, box: box.clientWidth, page: document.documentElement.scrollWidth,
                        view: window.innerWidth};
            }"""
        )
        if sizes["table"] > sizes["box"] or sizes["page"] > sizes["view"]:
            overflowing.append(f"{url}: {sizes}")
        broken_words += [f"{url}: {word}" for word in page.evaluate(_WORDS_BROKEN_ACROSS_LINES)]
        for badge in page.locator("#result_list .tg-status").all():
            colors = badge.evaluate(
                "el => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor, el.dataset.status]"
            )
            badges[colors[2]] = round(_contrast(colors[0], colors[1]), 2)
        if model._meta.model_name == "payment":
            _shoot(page, "payments")
        if model._meta.model_name == "grant":
            _shoot(page, "grants")
        if model._meta.model_name in (
            "hold",
            "usagethreshold",
            "autorecharge",
            "plancreditslice",
            "productfeature",
            "spendcap",
            "entity",
            "entitycounter",
            "costtable",
            "usageevent",
            "usagecorrection",
            "lateusagecharge",
            "journalentry",
            "balancetransaction",
        ):
            _shoot(page, model._meta.verbose_name_plural.replace(" ", "-"))
    assert "\n".join(overflowing) == ""
    # Cells wrap between words, and long identifiers at their dots and underscores ("entitlement." / "granted"),
    # never inside a word ("entitlement.gr" / "anted", "Subscripti" / "on").
    assert "\n".join(broken_words) == ""
    assert set(badges) >= {
        "requires_payment_method",
        "succeeded",
        "failed",
        "past_due",
        "paid",
        "completed",
        "confirmed",
    }
    assert {status: ratio for status, ratio in badges.items() if ratio < 4.5} == {}


def test_view_site_customer_page_and_dashboard_tooltips(page, tenant_a, catalog):
    ids = _seed(tenant_a, catalog)
    _log_in(page)
    page.goto("/admin/")
    assert page.locator("#site-name a").inner_text() == "Tollgate back office"
    page.click("text=View site")
    page.wait_for_url("**/api/docs/")
    assert page.title() != ""
    page.goto("/admin/customers/customer/")
    explain = page.locator("#result_list td.field-entitlements_link a")
    box = explain.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= 1366
    page.goto(f"/admin/customers/customer/{quote(ids['customer'])}/change/")
    _shoot(page, "customer")
    page.locator("#payments-group").scroll_into_view_if_needed()
    _shoot(page, "customer-payments")
    page.locator("#holds-group").scroll_into_view_if_needed()
    _shoot(page, "customer-holds")
    inline = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert inline[0] <= inline[1]
    _seed_margins(tenant_a.project)
    page.goto("/admin/dashboard/")
    assert page.locator("h1").all_inner_texts() == ["Dashboard"]
    bar = page.locator('figure:has(h3:text-is("Net revenue per month (USD)")) g.tg-month').last
    assert (
        bar.locator("title").text_content() == f"{timezone.now():%Y-%m}: $1,225.56"
    )  # $1,234.56 paid, $9.00 refunded
    sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1]
    _shoot(page, "dashboard")
    # The least profitable customers this month: a loss first, each bar with its margin, billed and cost.
    margins = page.locator('figure.tg-margins[data-currency="usd"]')
    margins.scroll_into_view_if_needed()
    assert margins.locator("g.tg-customer").evaluate_all("gs => gs.map(g => g.dataset.customer)") == [
        "initech",
        "globex-labs",
        "user-4f1c2a9e-7b3d-4e8a-9c61-2d5f0b7a8e13",
        "hooli-ml",
        "acme-research",
    ]
    assert margins.locator("g.tg-customer title").all_text_contents()[1] == (
        "alpha · globex-labs: margin -$0.75 (-25.00 % of billed); billed $3.00, cost $3.75"
    )
    assert margins.locator("text.tg-value").all_text_contents() == [
        "-$1.25",
        "-$0.75",
        "-$0.045",
        "$1.10",
        "$8.90",
    ]
    box = margins.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= 1366
    _shoot(page, "dashboard-margins")


def test_the_dashboard_charts_revenue_recognised_and_deferred(page, tenant_a, catalog):
    _seed_recognition(tenant_a.project, catalog)
    _log_in(page)
    page.goto("/admin/dashboard/")
    chart = page.locator('figure:has(h3:text-is("Revenue recognised and deferred (USD)"))')
    chart.scroll_into_view_if_needed()
    months = chart.locator("g.tg-month")
    assert months.count() == 12
    # The oldest month: only its own month's plan, earned within it; nothing left over at its close.
    assert months.first.locator("title").all_text_contents() == [
        f"{months.first.get_attribute('data-month')}, recognised in the month: $49.00",
        f"{months.first.get_attribute('data-month')}, deferred at its close: $0.00",
    ]
    # The two bars of a month sit side by side inside its slot, the deferred one in its own colour.
    bars = months.nth(6).locator("rect.tg-bar")
    recognised, deferred = (bars.nth(index).bounding_box() for index in (0, 1))
    assert recognised is not None
    assert deferred is not None
    assert recognised["x"] + recognised["width"] < deferred["x"]
    assert deferred["height"] > recognised["height"] > 0
    fills = bars.evaluate_all("rects => rects.map(rect => getComputedStyle(rect).fill)")
    assert fills[0] != fills[1]
    box = chart.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= 1366
    _shoot(page, "dashboard-recognition")

    # The schedules the dashboard's report wrote, one per paid line: in words and money, newest first.
    page.goto("/admin/billing/revenueschedule/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 13
    yearly = page.locator("#result_list tbody tr", has_text="in_recognition_yearly")
    assert yearly.locator("td.field-kind_in_words").inner_text() == "subscription line"
    assert yearly.locator("td.field-amount").inner_text() == "$1,200.00"
    sizes = page.evaluate(
        "() => [document.querySelector('#result_list').scrollWidth, "
        "document.querySelector('#result_list').closest('.results').clientWidth]"
    )
    assert sizes[0] <= sizes[1]
    _shoot(page, "revenue-schedules")


def test_detail_pages_are_views_in_words_and_money(page, tenant_a, catalog):
    """What an operator reads on a payment, a tiered price and the invoices: a view (no Save), labels in words,
    money in major units, the status filter naming statuses as the badges do."""
    ids = _seed(tenant_a, catalog)
    Payment.objects.filter(pk=ids["payment"]).update(amount_tax=361, amount_discount=500)
    tiered = Price.objects.create(
        project=tenant_a.project,
        key="seats-monthly",
        product=catalog.pro,
        currency="usd",
        unit_amount=None,
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=[
            {"up_to": 10, "unit_amount": 1200, "flat_amount": None},
            {"up_to": "inf", "unit_amount": 900, "flat_amount": 2000},
        ],
        type="recurring",
        interval="month",
    )
    _log_in(page)

    page.goto(f"/admin/billing/payment/{quote(ids['payment'])}/change/")
    assert page.locator("#content h1").inner_text() == "View payment"
    assert page.locator("input[name=_save], input[name=_continue]").count() == 0
    rows = dict(
        zip(
            page.locator(".form-row label").all_inner_texts(),
            page.locator(".form-row .readonly").all_inner_texts(),
            strict=True,
        )
    )
    assert (rows["Amount:"], rows["Tax (included):"], rows["Discount (taken off):"]) == (
        "$49.00",
        "$3.61",
        "$5.00",
    )
    assert rows["Stripe payment intent:"] == "pi_3PQxR7aLm2Pz9KfT1a2b3c4d"
    assert not any(re.search(r"\b(id|url|repr)\W*$", label) for label in rows)
    _shoot(page, "payment-detail")

    page.goto(f"/admin/catalog/price/{quote(tiered.pk)}/change/")
    tiers = page.locator(".field-tiers table.tg-tiers tbody tr")
    assert [row.locator("td").all_inner_texts() for row in tiers.all()] == [
        ["1–10", "$12.00 each"],
        ["11 and up", "$9.00 each + $20.00 flat"],
    ]
    page.goto("/admin/catalog/price/")
    assert page.locator(f"#result_list tr:has-text('{tiered.key}') td.field-unit_amount").inner_text() == (
        "tiered (graduated)"
    )
    _shoot(page, "prices")

    page.goto("/admin/billing/invoice/")
    status_filter = page.locator('details[data-filter-title="status"] li a').all_inner_texts()
    badges = page.locator("#result_list .tg-status").all_inner_texts()
    assert status_filter == ["All", "Draft", "Open", "Paid", "Uncollectible", "Void"]
    assert badges == ["Paid"]
    # The corrections an operator may make, each asking for a reason on the next page.
    actions = page.locator("select[name=action] option").all_inner_texts()
    assert actions[1:] == [
        "Void (no longer owed; final)",
        "Mark uncollectible (a bad debt)",
        "Issue a credit note (refund, balance credit or outside Stripe)",
        "Add a line (drafts)",
        "Change or remove a draft's line",
    ]
    _shoot(page, "invoices")


def test_an_operator_turns_on_the_voided_first_invoice_rule_in_the_project_form(page, tenant_a):
    """The project form shows the setting in words with what it does; saving it on changes the project and the
    audit log says who, before and after."""
    _log_in(page)
    page.goto(f"/admin/projects/project/{quote(tenant_a.project.pk)}/change/")
    box = page.locator("#id_first_invoice_void_ends_subscription")
    assert box.is_checked() is False
    row = page.locator(".field-first_invoice_void_ends_subscription")
    assert "A voided first invoice ends its subscription" in row.inner_text()
    assert "before anything was paid on it" in row.inner_text()
    box.check()
    row.scroll_into_view_if_needed()
    _shoot(page, "project-first-invoice-void")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/projects/project/")

    tenant_a.project.refresh_from_db()
    assert tenant_a.project.first_invoice_void_ends_subscription is True
    audit = AuditLogEntry.objects.get(action="project.updated", target_id=tenant_a.project.pk)
    assert (audit.actor_repr, audit.before["first_invoice_void_ends_subscription"]) == ("root-op", False)
    assert audit.after["first_invoice_void_ends_subscription"] is True


def _draft_line(line_id: str, kind: str, description: str, amount: int) -> dict:
    return {
        "stripe_line_id": line_id,
        "type": kind,
        "description": description,
        "amount": amount,
        "currency": "usd",
        "quantity": 1,
    }


def test_the_draft_line_forms_offer_the_drafts_own_lines_in_words_and_money(page, tenant_a, catalog):
    """The invoices' actions editing a draft's lines: the add form asks for an amount, a description and a reason;
    the change form offers the selected drafts' lines of invoice items (never a subscription's line, nor a paid
    invoice's), named by invoice, description and money. Nothing is sent: the pages are only looked at."""
    _seed(tenant_a, catalog)
    paid = Invoice.objects.get(status="paid")  # selected too: a paid invoice's lines are not offered
    customer = CustomerFactory(project=tenant_a.project, external_id="user-7", currency="usd")
    drafts = [
        Invoice.objects.create(
            project=tenant_a.project,
            customer=customer,
            stripe_invoice_id=f"in_1PQxR7aLm2Pz9KfTdraft000{n}",
            status="draft",
            currency="usd",
            subtotal=total,
            total=total,
            amount_due=total,
            lines=lines,
        )
        for n, total, lines in (
            (
                1,
                5400,
                [
                    _draft_line("il_1PQxR7aLm2Pz9KfTsub1", "subscription_item", "1 × Professional", 4900),
                    _draft_line("il_1PQxR7aLm2Pz9KfTset1", "invoice_item", "Setup", 1500),
                    _draft_line(
                        "il_1PQxR7aLm2Pz9KfTonb1",
                        "invoice_item",
                        "Onboarding: two sessions with the customer's team, remote",
                        2500,
                    ),
                    _draft_line("il_1PQxR7aLm2Pz9KfTgdw1", "invoice_item", "Goodwill credit", -3500),
                ],
            ),
            (2, 700, [_draft_line("il_1PQxR7aLm2Pz9KfText2", "invoice_item", "Extra seat", 700)]),
        )
    ]
    _log_in(page)

    page.goto("/admin/billing/invoice/")
    for invoice in drafts:
        page.check(f"input[name=_selected_action][value={invoice.pk}]")
    page.select_option("select[name=action]", "add_line")
    page.click("button[name=index]")
    assert page.locator("#content h1").inner_text() == "Add a line to draft invoices"
    assert page.locator("input[name=amount]").is_visible()
    assert page.locator("input[name=description]").is_visible()
    page.fill("input[name=amount]", "25.00")
    page.fill("input[name=description]", "Onboarding")
    page.fill("textarea[name=reason]", "ticket 81: agreed on the call")
    _shoot(page, "invoice-line-add")

    page.goto("/admin/billing/invoice/")
    for invoice in drafts:
        page.check(f"input[name=_selected_action][value={invoice.pk}]")
    page.check(f"input[name=_selected_action][value={paid.pk}]")
    page.select_option("select[name=action]", "edit_line")
    page.click("button[name=index]")
    assert page.locator("#content h1").inner_text() == "Change or remove a draft's line"
    offered = page.locator("select[name=line] option").all_inner_texts()
    first, second = drafts
    assert offered[0] == "Choose a line"
    mine = [  # the first draft's lines of invoice items, in their order; not its subscription's line
        f"{first.pk} · Setup · $15.00",
        f"{first.pk} · Onboarding: two sessions with the customer's team, remote · $25.00",
        f"{first.pk} · Goodwill credit · -$35.00",
    ]
    assert [text for text in offered if text.startswith(first.pk)] == mine
    assert sorted(offered[1:]) == sorted([*mine, f"{second.pk} · Extra seat · $7.00"])
    assert page.locator("input[name=what]").count() == 2
    page.select_option("select[name=line]", f"{first.pk}:il_1PQxR7aLm2Pz9KfTonb1")
    page.fill("input[name=amount]", "20.00")
    page.fill("textarea[name=reason]", "ticket 81: discount agreed")
    _shoot(page, "invoice-line-edit")
    # Submitted as a change of nothing: the form again, saying what is missing; nothing sent.
    page.fill("input[name=amount]", "")
    page.click("input[name=apply]")
    assert "A change needs a new amount, a new description, or both." in page.locator("#content").inner_text()
    _shoot(page, "invoice-line-edit-refused")
    assert not AuditLogEntry.objects.filter(action__startswith="invoice.line_").exists()


def test_a_journal_entry_shows_its_lines_as_debits_and_credits_in_money(page, tenant_a, catalog):
    _seed(tenant_a, catalog)
    _log_in(page)
    entry = JournalEntry.objects.get(kind="payment")

    page.goto(f"/admin/billing/journalentry/{quote(entry.pk)}/change/")
    _shoot(page, "journal-entry")

    rows = [
        [row.locator(f"td.field-{name}").inner_text().strip() for name in ("account_name", "debit", "credit")]
        for row in page.locator(".inline-related tbody tr.has_original").all()
    ]
    assert rows == [
        ["2100 Deferred revenue", "", "$1,234.56"],
        ["1010 Cash at Stripe", "$1,234.56", ""],
    ]
    assert page.locator(".field-kind_name .readonly").inner_text() == "Payment"
