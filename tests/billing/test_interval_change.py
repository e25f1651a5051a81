"""Switching a subscription monthly ↔ yearly, end to end through the emulator: `PATCH /subscriptions/{id}` with a
price of another interval restarts the billing period at the change, credits the unused time and charges the new
period in full at once; the mirror takes the new period from Stripe's events; `POST …/preview` shows that very
invoice; a declined card changes nothing; the customer portal offers and performs the same switch.

The clock is frozen at 2027-01-15 08:00 UTC for the checkout: the first monthly period is 31 days (2 678 400 s);
ten days on, 1 814 400 s are unused: 3000 × 1 814 400 / 2 678 400 = 2032.26 → a 2032 credit."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

import pytest
import time_machine

from billing.models import Invoice, Payment, Subscription
from catalog.models import Feature
from core.models import AuditLogEntry
from entitlements.models import UsageCounter, UsageEvent
from tests.catalog import price_create
from tests.e2e.test_subscription_lifecycle import _complete, _subscribe
from tests.entitlements.factories import FeatureFactory, ProductFeatureFactory

pytestmark = pytest.mark.django_db

START = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
T0 = int(START.timestamp())  # 1 800 000 000
CHANGE = T0 + 10 * 86_400  # 2027-01-25 08:00 UTC
MONTH_END = T0 + 2_678_400  # 2027-02-15 08:00 UTC
YEAR_END = 1_832_400_000  # 2028-01-25 08:00 UTC
DECLINING_CARD = "4000000000000341"  # attaches; every charge fails


@pytest.fixture
def yearly(catalog):
    return price_create(catalog.pro, "pro-yearly", 30000, interval="year")


@pytest.fixture
def allowance(tenant_a, catalog):
    """The product gives 1000 API calls a period: the allowance resets when the period does."""
    feature = FeatureFactory(project=tenant_a.project, key="api_calls", type=Feature.Type.METERED)
    ProductFeatureFactory(product=catalog.pro, feature=feature, value=1000)
    return feature


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def _at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _iso(timestamp: int) -> str:
    return _at(timestamp).isoformat().replace("+00:00", "Z")


def _decline_from_now(stripe_sdk, subscription: Subscription) -> None:
    sdk = stripe_sdk()
    card = sdk.v1.payment_methods.create(
        {"type": "card", "card": {"number": DECLINING_CARD, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    sdk.v1.payment_methods.attach(card.id, {"customer": subscription.customer.stripe_customer_id})
    sdk.v1.subscriptions.update(subscription.stripe_subscription_id, {"default_payment_method": card.id})


def _stripe_state(stripe_sdk, subscription: Subscription):
    live = stripe_sdk().v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    item = live["items"].data[0]
    return item.price.id, item.current_period_start, item.current_period_end, live.billing_cycle_anchor


def _lines(invoice: Invoice):
    return [
        (line["amount"], line["proration"], line["stripe_price_id"], line["period_start"], line["period_end"])
        for line in invoice.lines
    ]


def test_monthly_to_yearly_restarts_the_period_credits_the_month_and_charges_the_year(
    api, tenant_a, catalog, yearly, allowance, clock, stripe_sdk, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    subscription = Subscription.objects.get()
    assert (subscription.current_period_start, subscription.current_period_end) == (_at(T0), _at(MONTH_END))
    before = api.get("/api/v1/entitlements?customer=user-1", key=tenant_a.key).json()["entitlements"]
    assert [(e["feature"], e["limit"], e["resets_at"]) for e in before] == [
        ("api_calls", 1000, _iso(MONTH_END))
    ]
    clock.shift(timedelta(days=10))
    # The change's events arrive shuffled and twice: the mirror still ends where Stripe is.
    stripe_emulator.webhooks.shuffle = True
    stripe_emulator.webhooks.duplicates = True

    response = api.patch(
        f"/api/v1/subscriptions/{subscription.pk}", {"price": "pro-yearly"}, key=tenant_a.key
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["price"], body["status"], body["quantity"]) == ("pro-yearly", "active", 1)
    assert (body["current_period_start"], body["current_period_end"]) == (_iso(CHANGE), _iso(YEAR_END))
    assert _stripe_state(stripe_sdk, subscription) == (yearly.stripe_price_id, CHANGE, YEAR_END, CHANGE)
    stripe_webhooks.deliver()
    subscription.refresh_from_db()
    assert (subscription.price_id, subscription.status) == (yearly.pk, "active")
    assert (subscription.current_period_start, subscription.current_period_end) == (
        _at(CHANGE),
        _at(YEAR_END),
    )
    change = Invoice.objects.get(billing_reason="subscription_update")
    assert (change.status, change.subtotal, change.total, change.amount_paid) == ("paid", 27968, 27968, 27968)
    assert _lines(change) == [
        (-2032, True, catalog.pro_monthly.stripe_price_id, CHANGE, MONTH_END),
        (30000, False, yearly.stripe_price_id, CHANGE, YEAR_END),
    ]
    assert Payment.objects.get(stripe_invoice_id=change.stripe_invoice_id).amount == 27968
    after = api.get("/api/v1/entitlements?customer=user-1", key=tenant_a.key).json()["entitlements"]
    assert [(e["feature"], e["limit"], e["resets_at"]) for e in after] == [
        ("api_calls", 1000, _iso(YEAR_END))
    ]
    audit = AuditLogEntry.objects.get(action="subscription.changed")
    assert (audit.before["price"], audit.after["price"]) == ("pro-monthly", "pro-yearly")


def test_the_interval_change_is_sent_as_pending_if_incomplete(
    api, tenant_a, catalog, yearly, clock, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """A declined card leaves the subscription monthly: the yearly plan waits in Stripe's pending update."""
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    subscription = Subscription.objects.get()
    _decline_from_now(stripe_sdk, subscription)
    stripe_webhooks.deliver()
    clock.shift(timedelta(days=10))

    response = api.patch(
        f"/api/v1/subscriptions/{subscription.pk}", {"price": "pro-yearly"}, key=tenant_a.key
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["price"], body["status"]) == ("pro-monthly", "active")
    assert (body["current_period_start"], body["current_period_end"]) == (_iso(T0), _iso(MONTH_END))
    live = stripe_sdk().v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    assert live.pending_update.billing_cycle_anchor == CHANGE
    assert _stripe_state(stripe_sdk, subscription) == (catalog.pro_monthly.stripe_price_id, T0, MONTH_END, T0)
    stripe_webhooks.deliver()
    subscription.refresh_from_db()
    assert (subscription.price_id, subscription.status) == (catalog.pro_monthly.pk, "active")
    assert (subscription.current_period_start, subscription.current_period_end) == (_at(T0), _at(MONTH_END))
    unpaid = Invoice.objects.get(billing_reason="subscription_update")
    assert (unpaid.status, unpaid.amount_remaining) == ("open", 27968)
    # The same request again is the pending update Stripe already holds: nothing more is sent.
    events = len(stripe_sdk().v1.events.list({"limit": 100}).data)
    again = api.patch(f"/api/v1/subscriptions/{subscription.pk}", {"price": "pro-yearly"}, key=tenant_a.key)
    assert again.status_code == 200
    assert len(stripe_sdk().v1.events.list({"limit": 100}).data) == events


def test_error_if_incomplete_decline_is_a_402_and_nothing_changes(
    api, tenant_a, catalog, yearly, clock, stripe_sdk, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    subscription = Subscription.objects.get()
    _decline_from_now(stripe_sdk, subscription)
    stripe_webhooks.deliver()
    clock.shift(timedelta(days=10))
    invoices = [i.id for i in stripe_sdk().v1.invoices.list().data]

    response = api.patch(
        f"/api/v1/subscriptions/{subscription.pk}",
        {"price": "pro-yearly", "payment_behavior": "error_if_incomplete"},
        key=tenant_a.key,
    )

    assert response.status_code == 402, response.content
    assert response.json()["error"]["code"] == "card_declined"
    assert _stripe_state(stripe_sdk, subscription) == (catalog.pro_monthly.stripe_price_id, T0, MONTH_END, T0)
    assert [i.id for i in stripe_sdk().v1.invoices.list().data] == invoices
    stripe_webhooks.deliver()
    subscription.refresh_from_db()
    assert (subscription.price_id, subscription.current_period_end) == (
        catalog.pro_monthly.pk,
        _at(MONTH_END),
    )
    assert not AuditLogEntry.objects.filter(action="subscription.changed").exists()


def test_yearly_to_monthly_credits_the_unused_year(
    api, tenant_a, catalog, yearly, clock, stripe_sdk, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, price="pro-yearly")
    subscription = Subscription.objects.get()
    assert subscription.current_period_end == _at(T0 + 365 * 86_400)
    clock.shift(timedelta(days=100))  # 2027-04-25 08:00 UTC: 265 of 365 days unused
    at, month_end = T0 + 100 * 86_400, T0 + 130 * 86_400

    response = api.patch(
        f"/api/v1/subscriptions/{subscription.pk}", {"price": "pro-monthly"}, key=tenant_a.key
    )

    assert response.status_code == 200, response.content
    assert (response.json()["price"], response.json()["current_period_end"]) == (
        "pro-monthly",
        _iso(month_end),
    )
    stripe_webhooks.deliver()
    subscription.refresh_from_db()
    assert (subscription.price_id, subscription.current_period_start, subscription.current_period_end) == (
        catalog.pro_monthly.pk,
        _at(at),
        _at(month_end),
    )
    change = Invoice.objects.get(billing_reason="subscription_update")
    # 30000 × 265 / 365 = 21780.82 → −21781; the month charged in full: the rest stays on the customer's balance.
    assert _lines(change) == [
        (-21781, True, yearly.stripe_price_id, at, T0 + 365 * 86_400),
        (3000, False, catalog.pro_monthly.stripe_price_id, at, month_end),
    ]
    assert (change.status, change.total, change.amount_due) == ("paid", -18781, 0)
    assert stripe_sdk().v1.customers.retrieve(subscription.customer.stripe_customer_id).balance == -18781


def test_preview_shows_the_interval_change_invoice_and_writes_nothing(
    api, tenant_a, catalog, yearly, clock, stripe_sdk, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    subscription = Subscription.objects.get()
    clock.shift(timedelta(days=10))
    path = f"/api/v1/subscriptions/{subscription.pk}"
    events = [e.id for e in stripe_sdk().v1.events.list({"limit": 100}).data]

    preview = api.post(f"{path}/preview", {"price": "pro-yearly"}, key=tenant_a.key)

    assert preview.status_code == 200, preview.content
    assert preview.json() == {
        "amount_due": 27968,
        "currency": "usd",
        "subtotal": 27968,
        "discount": 0,
        "tax": 0,
        "total": 27968,
        "lines": [
            {
                "description": "Unused time on 1 × Professional after 25 Jan 2027",
                "amount": -2032,
                "quantity": 1,
                "proration": True,
                "period_start": _iso(CHANGE),
                "period_end": _iso(MONTH_END),
            },
            {
                "description": "1 × Professional (at $300.00 / year)",
                "amount": 30000,
                "quantity": 1,
                "proration": False,
                "period_start": _iso(CHANGE),
                "period_end": _iso(YEAR_END),
            },
        ],
        "rule": "now_prorate",  # the project's default rule for an interval change: now, prorated
        "change": "interval_change",
        "effective_at": None,
    }
    assert [e.id for e in stripe_sdk().v1.events.list({"limit": 100}).data] == events
    assert _stripe_state(stripe_sdk, subscription) == (catalog.pro_monthly.stripe_price_id, T0, MONTH_END, T0)
    assert not Invoice.objects.filter(billing_reason="subscription_update").exists()

    assert api.patch(path, {"price": "pro-yearly"}, key=tenant_a.key).status_code == 200
    stripe_webhooks.deliver()
    change = Invoice.objects.get(billing_reason="subscription_update")
    assert [(line["description"], line["amount"]) for line in change.lines] == [
        (line["description"], line["amount"]) for line in preview.json()["lines"]
    ]


def test_another_projects_key_or_price_changes_nothing(
    api, tenant_a, tenant_b, catalog, catalog_b, yearly, clock, stripe_sdk, stripe_emulator, stripe_webhooks
):
    price_create(catalog_b.pro, "pro-yearly", 30000, interval="year")
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    subscription = Subscription.objects.get()
    path = f"/api/v1/subscriptions/{subscription.pk}"
    assert api.patch(path, {"price": "pro-yearly"}, key=tenant_b.key).status_code == 404
    assert api.post(f"{path}/preview", {"price": "pro-yearly"}, key=tenant_b.key).status_code == 404
    theirs = catalog_b.project.prices.get(key="pro-yearly").pk
    refused = api.patch(path, {"price": theirs}, key=tenant_a.key)
    assert refused.status_code == 404
    assert _stripe_state(stripe_sdk, subscription) == (catalog.pro_monthly.stripe_price_id, T0, MONTH_END, T0)
    assert not AuditLogEntry.objects.filter(action="subscription.changed").exists()


def test_the_portal_switches_monthly_to_yearly(
    api, tenant_a, catalog, yearly, clock, stripe_sdk, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    subscription = Subscription.objects.get()
    # The portal offers the project's public plans only.
    assert api.patch("/api/v1/products/pro", {"public": True}, key=tenant_a.key).status_code == 200
    url = api.post(
        "/api/v1/portal",
        {"customer": "user-1", "return_url": "https://app.example.com/account"},
        key=tenant_a.key,
    ).json()["url"]
    page = urlsplit(url).path
    clock.shift(timedelta(days=10))
    shown = stripe_emulator.handle("GET", page).body.decode()
    assert f'<option value="{yearly.stripe_price_id}">Professional — $300.00/year' in shown

    switched = stripe_emulator.handle(
        "POST",
        f"{page}/subscriptions/{subscription.stripe_subscription_id}/update",
        body=urlencode({"price": yearly.stripe_price_id}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert switched.status == 303
    assert switched.headers["Location"].endswith("?message=Your%20plan%20has%20been%20updated.")
    stripe_webhooks.deliver()
    subscription.refresh_from_db()
    assert (subscription.price_id, subscription.current_period_start, subscription.current_period_end) == (
        yearly.pk,
        _at(CHANGE),
        _at(YEAR_END),
    )
    change = Invoice.objects.get(billing_reason="subscription_update")
    assert (change.status, change.total) == ("paid", 27968)
    assert _lines(change) == [
        (-2032, True, catalog.pro_monthly.stripe_price_id, CHANGE, MONTH_END),
        (30000, False, yearly.stripe_price_id, CHANGE, YEAR_END),
    ]
    assert "Renews on Jan 25, 2028" in stripe_emulator.handle("GET", page).body.decode()


# --- A subscription with a metered item: every item changes interval at once ---------------------------------


@pytest.fixture
def metered(catalog, allowance):
    """Per-call prices of the same product, on the `api_calls` meter: one monthly, one yearly."""
    return (
        price_create(
            catalog.pro, "pro-calls-monthly", 2, interval="month", usage_type="metered", meter="api_calls"
        ),
        price_create(
            catalog.pro, "pro-calls-yearly", 2, interval="year", usage_type="metered", meter="api_calls"
        ),
    )


def _subscribe_with_calls(api, tenant, stripe_emulator, stripe_webhooks):
    created = api.post(
        "/api/v1/checkout/subscription",
        {
            "customer": "user-1",
            "items": [{"price": "pro-monthly"}, {"price": "pro-calls-monthly"}],
            "success_url": "https://app.example.com/ok",
            "cancel_url": "https://app.example.com/ok",
        },
        key=tenant.key,
    )
    assert created.status_code == 201, created.content
    _complete(stripe_emulator, created.json()["stripe_session_id"])
    stripe_webhooks.deliver()
    return Subscription.objects.get()


def _everything(stripe_sdk, subscription: Subscription):
    """What a refused change must leave alone: Stripe's subscription, invoices and events; ours and the audit."""
    client = stripe_sdk()
    live = client.v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    return (
        [(i.price.id, i.quantity, i.current_period_start, i.current_period_end) for i in live["items"].data],
        live.billing_cycle_anchor,
        [i.id for i in client.v1.invoices.list({"limit": 100}).auto_paging_iter()],
        [e.id for e in client.v1.events.list({"limit": 100}).auto_paging_iter()],
        list(Subscription.objects.values_list("pk", "price_id", "current_period_end", "updated_at")),
        sorted(subscription.items.values_list("stripe_item_id", "price_id", "quantity")),
        Invoice.objects.count(),
        AuditLogEntry.objects.filter(action="subscription.changed").count(),
    )


def test_a_price_change_that_would_mix_intervals_is_refused_before_stripe(
    api, tenant_a, catalog, yearly, metered, clock, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """`price` replaces the main item only: the metered monthly item would stay monthly, which Stripe refuses.
    Tollgate says so (400 `interval_mismatch`, `param: price`) instead of a 502, and nothing changes."""
    subscription = _subscribe_with_calls(api, tenant_a, stripe_emulator, stripe_webhooks)
    clock.shift(timedelta(days=10))
    path = f"/api/v1/subscriptions/{subscription.pk}"
    before = _everything(stripe_sdk, subscription)

    for response in (
        api.patch(path, {"price": "pro-yearly"}, key=tenant_a.key),
        api.post(f"{path}/preview", {"price": "pro-yearly"}, key=tenant_a.key),
        api.patch(
            path, {"price": "pro-yearly", "quantity": 2, "proration_behavior": "none"}, key=tenant_a.key
        ),
    ):
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            "interval_mismatch",
            "price",
        )
        assert "pro-calls-monthly" in error["message"]
        assert "`items`" in error["message"]
    # An `items` list that would still mix intervals is refused on the item that does.
    mixed = api.patch(
        path, {"items": [{"price": "pro-yearly"}, {"price": "pro-calls-monthly"}]}, key=tenant_a.key
    )
    assert mixed.status_code == 400, mixed.content
    assert (mixed.json()["error"]["code"], mixed.json()["error"]["param"]) == (
        "interval_mismatch",
        "items[1].price",
    )

    stripe_webhooks.deliver()
    assert _everything(stripe_sdk, subscription) == before


def test_a_price_change_is_refused_when_stripe_has_an_item_the_mirror_lacks(
    api, tenant_a, catalog, yearly, metered, clock, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """The metered item was added at Stripe a moment ago and its event is not applied yet: Stripe's own items
    are checked before anything is written."""
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    subscription = Subscription.objects.get()
    stripe_sdk().v1.subscriptions.update(
        subscription.stripe_subscription_id,
        {"items": [{"price": metered[0].stripe_price_id}], "proration_behavior": "none"},
    )
    clock.shift(timedelta(days=10))
    before = _everything(stripe_sdk, subscription)

    response = api.patch(
        f"/api/v1/subscriptions/{subscription.pk}", {"price": "pro-yearly"}, key=tenant_a.key
    )

    assert response.status_code == 400, response.content
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
        "interval_mismatch",
        "price",
    )
    assert _everything(stripe_sdk, subscription) == before


def test_every_item_switched_to_yearly_through_items_is_invoiced_at_once(
    api, tenant_a, catalog, yearly, metered, clock, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """Base and metered items switched together: the period restarts at the change, the month's unused base
    time is credited (2032, see the module docstring), the year is charged in full, and the usage of the cut-short
    month (40 calls × 0.02) is billed in arrears on the same invoice."""
    subscription = _subscribe_with_calls(api, tenant_a, stripe_emulator, stripe_webhooks)
    clock.shift(timedelta(days=1))
    usage = {"id": "u-1", "customer": "user-1", "feature": "api_calls", "quantity": 40}
    assert api.post("/api/v1/usage", usage, key=tenant_a.key).status_code == 201
    clock.shift(timedelta(days=9))
    path = f"/api/v1/subscriptions/{subscription.pk}"
    body = {"items": [{"price": "pro-yearly"}, {"price": "pro-calls-yearly"}]}

    preview = api.post(f"{path}/preview", body, key=tenant_a.key)
    response = api.patch(path, body, key=tenant_a.key)

    assert response.status_code == 200, response.content
    shown = response.json()
    assert [(i["price"], i["quantity"]) for i in shown["items"]] == [
        ("pro-yearly", 1),
        ("pro-calls-yearly", None),
    ]
    assert (shown["current_period_start"], shown["current_period_end"]) == (_iso(CHANGE), _iso(YEAR_END))
    live = stripe_sdk().v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    assert [(i.price.id, i.current_period_start, i.current_period_end) for i in live["items"].data] == [
        (yearly.stripe_price_id, CHANGE, YEAR_END),
        (metered[1].stripe_price_id, CHANGE, YEAR_END),
    ]
    stripe_webhooks.deliver()
    change = Invoice.objects.get(billing_reason="subscription_update")
    assert sorted(_lines(change)) == sorted(
        [
            (-2032, True, catalog.pro_monthly.stripe_price_id, CHANGE, MONTH_END),
            (80, False, metered[0].stripe_price_id, T0, CHANGE),
            (30000, False, yearly.stripe_price_id, CHANGE, YEAR_END),
        ]
    )
    assert (change.status, change.subtotal, change.total, change.amount_paid) == ("paid", 28048, 28048, 28048)
    assert Payment.objects.get(stripe_invoice_id=change.stripe_invoice_id).amount == 28048
    assert preview.status_code == 200, preview.content
    assert preview.json()["amount_due"] == 28048
    assert sorted(line["amount"] for line in preview.json()["lines"]) == [-2032, 80, 30000]
    subscription.refresh_from_db()
    assert sorted(subscription.items.values_list("price__key", "quantity")) == [
        ("pro-calls-yearly", None),
        ("pro-yearly", 1),
    ]
    assert (subscription.current_period_start, subscription.current_period_end) == (
        _at(CHANGE),
        _at(YEAR_END),
    )


def test_usage_recorded_in_the_second_of_the_switch_is_billed_on_the_switch_invoice(
    api, tenant_a, catalog, yearly, metered, allowance, clock, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """600 calls recorded at 08:00:00.0x, the switch to yearly asked at 08:00:00.7 (#49). Stripe files a meter
    event under its whole second and starts the new period on the second of the switch, so asked in that same
    second the calls would fall in the new year (the switch invoice billing 0, Tollgate counting them in the
    month). The switch is sent once that second is over: the calls are billed on the switch invoice, in the month
    they were counted in, and the new year starts empty at both ends."""
    subscription = _subscribe_with_calls(api, tenant_a, stripe_emulator, stripe_webhooks)
    switched = CHANGE + 1  # the second after the one the calls were recorded in
    with time_machine.travel(_at(CHANGE), tick=True) as moving:
        usage = {"id": "u-1", "customer": "user-1", "feature": "api_calls", "quantity": 600}
        assert api.post("/api/v1/usage", usage, key=tenant_a.key).status_code == 201
        moving.move_to(_at(CHANGE) + timedelta(seconds=0.7))
        body = {"items": [{"price": "pro-yearly"}, {"price": "pro-calls-yearly"}]}
        response = api.patch(f"/api/v1/subscriptions/{subscription.pk}", body, key=tenant_a.key)
        assert response.status_code == 200, response.content
        stripe_webhooks.deliver()
        after = api.get("/api/v1/usage?customer=user-1&feature=api_calls", key=tenant_a.key).json()

    year_end = int(datetime(2028, 1, 25, 8, 0, 1, tzinfo=UTC).timestamp())
    change = Invoice.objects.get(billing_reason="subscription_update")
    assert sorted(_lines(change)) == sorted(
        [
            (-2032, True, catalog.pro_monthly.stripe_price_id, switched, MONTH_END),
            (1200, False, metered[0].stripe_price_id, T0, switched),
            (30000, False, yearly.stripe_price_id, switched, year_end),
        ]
    )
    assert (after["period_start"], after["quantity"], after["billed_quantity"]) == (_iso(switched), 0, 0)
    assert after["amount_due_estimate"] == 0
    allowance.refresh_from_db()
    summaries = stripe_sdk().v1.billing.meters.event_summaries.list(
        allowance.stripe_meter_id,
        {"customer": subscription.customer.stripe_customer_id, "start_time": switched, "end_time": year_end},
    )
    assert [s.aggregated_value for s in summaries.data] == [0]
    assert list(
        UsageCounter.objects.filter(customer=subscription.customer).values_list("period_start", "used")
    ) == [(_at(T0), 600)]


def test_usage_waiting_out_a_failed_report_is_billed_on_the_switch_invoice(
    api, tenant_a, catalog, yearly, metered, allowance, clock, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """The report of 40 calls failed (the meter was off at Stripe) and waits out its backoff when the switch is
    asked: the switch reports them first, so the switch invoice bills them (reported after it, stamped in the
    month, they would be billed by nobody)."""
    subscription = _subscribe_with_calls(api, tenant_a, stripe_emulator, stripe_webhooks)
    allowance.refresh_from_db()
    sdk = stripe_sdk()
    clock.move_to(_at(CHANGE - 10))
    sdk.v1.billing.meters.deactivate(allowance.stripe_meter_id)
    usage = {"id": "u-1", "customer": "user-1", "feature": "api_calls", "quantity": 40}
    assert api.post("/api/v1/usage", usage, key=tenant_a.key).status_code == 201
    assert UsageEvent.objects.values_list("meter_status", "meter_attempts").get() == ("pending", 1)
    sdk.v1.billing.meters.reactivate(allowance.stripe_meter_id)
    clock.move_to(_at(CHANGE))  # the retry is due 30 s after the failure: not yet
    switched = CHANGE
    body = {"items": [{"price": "pro-yearly"}, {"price": "pro-calls-yearly"}]}

    response = api.patch(f"/api/v1/subscriptions/{subscription.pk}", body, key=tenant_a.key)

    assert response.status_code == 200, response.content
    stripe_webhooks.deliver()
    change = Invoice.objects.get(billing_reason="subscription_update")
    assert [line[:5] for line in _lines(change) if line[2] == metered[0].stripe_price_id] == [
        (80, False, metered[0].stripe_price_id, T0, switched)
    ]
    assert UsageEvent.objects.values_list("meter_status", "meter_attempts").get() == ("reported", 2)
