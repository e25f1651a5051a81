"""Subscriptions with several items (issue #15): a base plan, an add-on and a metered price on one Stripe
subscription, mirrored item by item, shown as `items`, summed by the entitlements, bought through Checkout
`items`, created server-side (`POST /subscriptions`) and changed item by item (`PATCH … items`)."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from billing.models import Subscription, SubscriptionItem
from billing.services.subscription_mirror import subscription_apply
from catalog.models import Feature, Price, Product
from catalog.services import products
from customers.models import Customer
from customers.services.customers import customer_ensure_stripe
from tests.catalog import ACTOR, price_create

pytestmark = pytest.mark.django_db


@dataclass
class Plans:
    base: Product
    base_monthly: Price
    base_yearly: Price
    addon: Product
    addon_monthly: Price
    usage: Product
    calls: Price


@pytest.fixture
def plans(tenant_a, stripe_emulator) -> Plans:
    project = tenant_a.project
    for key, type in (
        ("projects", Feature.Type.METERED),
        ("api_calls", Feature.Type.METERED),
        ("export", Feature.Type.BOOLEAN),
    ):
        Feature.objects.create(project=project, key=key, name=key, type=type)
    base = products.product_create(
        project=project,
        actor=ACTOR,
        key="base",
        name="Base plan",
        features={"projects": {"per_unit": 5}, "api_calls": 1000},
    )
    addon = products.product_create(
        project=project,
        actor=ACTOR,
        key="addon",
        name="Extra projects",
        features={"projects": {"per_unit": 10}, "export": True},
    )
    usage = products.product_create(
        project=project, actor=ACTOR, key="usage", name="API usage", features={"api_calls": 500}
    )
    return Plans(
        base=base,
        base_monthly=price_create(base, "base-monthly", 2000, interval="month"),
        base_yearly=price_create(base, "base-yearly", 20000, interval="year"),
        addon=addon,
        addon_monthly=price_create(addon, "addon-monthly", 500, interval="month"),
        usage=usage,
        calls=price_create(usage, "calls", 3, interval="month", usage_type="metered", meter="api_calls"),
    )


def _stripe_customer(api: Any, tenant: Any, sdk: Any, external_id: str = "user-1", card: bool = True) -> str:
    """The customer, at Stripe too, with a saved default card (`pm_card_visa`) unless `card` is False."""
    api.post("/api/v1/customers", {"external_id": external_id}, key=tenant.key)
    stripe_customer = customer_ensure_stripe(
        customer=Customer.objects.get(project=tenant.project, external_id=external_id)
    )
    if card:
        pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer}).id
        sdk.v1.customers.update(stripe_customer, {"invoice_settings": {"default_payment_method": pm}})
    return stripe_customer


def base_and_addon(
    api: Any, tenant: Any, plans: Plans, sdk: Any, stripe_webhooks: Any
) -> tuple[Any, dict[str, str]]:
    """Two seats of the base plan and an add-on, created at Stripe and mirrored: the Stripe subscription and its
    item ids by Stripe price."""
    created = sdk.v1.subscriptions.create(
        {
            "customer": _stripe_customer(api, tenant, sdk),
            "items": [
                {"price": plans.base_monthly.stripe_price_id, "quantity": 2},
                {"price": plans.addon_monthly.stripe_price_id},
            ],
        }
    )
    stripe_webhooks.deliver()
    return created, {item.price.id: item.id for item in created["items"].data}


def _rows(subscription: Subscription) -> list[tuple[Any, ...]]:
    return list(
        subscription.items.order_by("price__key").values_list(
            "price__key", "product__key", "quantity", "usage_type", "stripe_item_id"
        )
    )


# --- 1. The mirror ------------------------------------------------------------------------------------------


def test_every_item_of_a_stripe_subscription_is_mirrored_and_kept_in_step(
    api, tenant_a, plans, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    stripe_customer = _stripe_customer(api, tenant_a, sdk)
    # A price that is not in the catalog: that item is skipped, the others still mirror.
    foreign = sdk.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 100,
            "recurring": {"interval": "month"},
            "product_data": {"name": "x"},
        }
    )
    created = sdk.v1.subscriptions.create(
        {
            "customer": stripe_customer,
            "items": [
                {"price": plans.calls.stripe_price_id},
                {"price": plans.base_monthly.stripe_price_id, "quantity": 2},
                {"price": plans.addon_monthly.stripe_price_id},
                {"price": foreign.id},
            ],
        }
    )
    stripe_webhooks.deliver()
    ids = {item.price.id: item.id for item in created["items"].data}

    subscription = Subscription.objects.get(stripe_subscription_id=created.id)
    # The primary item is the first licensed one (the metered item comes first at Stripe).
    assert (subscription.status, subscription.price_id, subscription.product_id, subscription.quantity) == (
        "active",
        plans.base_monthly.pk,
        plans.base.pk,
        2,
    )
    assert _rows(subscription) == [
        ("addon-monthly", "addon", 1, "licensed", ids[plans.addon_monthly.stripe_price_id]),
        ("base-monthly", "base", 2, "licensed", ids[plans.base_monthly.stripe_price_id]),
        ("calls", "usage", None, "metered", ids[plans.calls.stripe_price_id]),
    ]
    assert all(row.pk.startswith("si_") for row in subscription.items.all())
    kept = subscription.items.get(price=plans.base_monthly).pk

    # At Stripe: the add-on removed, the base plan to 3 seats.
    sdk.v1.subscriptions.update(
        created.id,
        {
            "items": [
                {"id": ids[plans.addon_monthly.stripe_price_id], "deleted": True},
                {"id": ids[plans.base_monthly.stripe_price_id], "quantity": 3},
            ],
            "proration_behavior": "none",
        },
    )
    stale = sdk.v1.subscriptions.retrieve(created.id).to_dict()
    stripe_webhooks.deliver()
    subscription.refresh_from_db()
    assert subscription.quantity == 3
    assert _rows(subscription) == [
        ("base-monthly", "base", 3, "licensed", ids[plans.base_monthly.stripe_price_id]),
        ("calls", "usage", None, "metered", ids[plans.calls.stripe_price_id]),
    ]
    assert subscription.items.get(price=plans.base_monthly).pk == kept  # same Stripe item, same row

    # An older state arriving late changes nothing.
    older = {**stale, "items": created["items"].to_dict()}
    subscription_apply(
        account="platform",
        stripe_subscription=older,
        event_created=subscription.stripe_event_created - 1,
    )
    assert [row[0] for row in _rows(subscription)] == ["base-monthly", "calls"]
    assert SubscriptionItem.objects.count() == 2


def test_a_subscription_with_no_catalog_price_is_not_mirrored(
    api, tenant_a, plans, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    stripe_customer = _stripe_customer(api, tenant_a, sdk)
    foreign = sdk.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 100,
            "recurring": {"interval": "month"},
            "product_data": {"name": "x"},
        }
    )
    sdk.v1.subscriptions.create({"customer": stripe_customer, "items": [{"price": foreign.id}]})
    stripe_webhooks.deliver()
    assert (Subscription.objects.count(), SubscriptionItem.objects.count()) == (0, 0)


def test_reconciliation_compares_and_repairs_the_items(api, tenant_a, plans, stripe_sdk, stripe_webhooks):
    from billing.models import Drift
    from tests.billing.test_reconciliation import _reconcile

    _, ids = base_and_addon(api, tenant_a, plans, stripe_sdk(), stripe_webhooks)
    base_item, addon_item = ids[plans.base_monthly.stripe_price_id], ids[plans.addon_monthly.stripe_price_id]
    SubscriptionItem.objects.filter(stripe_item_id=addon_item).delete()  # lost locally
    SubscriptionItem.objects.filter(stripe_item_id=base_item).update(quantity=7)

    out, error = _reconcile("--project", tenant_a.project.slug, "--fix")

    assert error is None, out
    assert sorted(Drift.objects.values_list("field", "local_value", "stripe_value", "status")) == sorted(
        [
            (f"item {addon_item} quantity", "None", "1", "fixed"),
            (f"item {addon_item} stripe_price_id", "None", plans.addon_monthly.stripe_price_id, "fixed"),
            (f"item {base_item} quantity", "7", "2", "fixed"),
        ]
    )
    assert _rows(Subscription.objects.get()) == [
        ("addon-monthly", "addon", 1, "licensed", addon_item),
        ("base-monthly", "base", 2, "licensed", base_item),
    ]


# --- 2. The representation ----------------------------------------------------------------------------------


def _subscription_with_items(api, tenant, plans, sdk, stripe_webhooks, external_id="user-1", base_quantity=2):
    stripe_customer = _stripe_customer(api, tenant, sdk, external_id)
    created = sdk.v1.subscriptions.create(
        {
            "customer": stripe_customer,
            "items": [
                {"price": plans.base_monthly.stripe_price_id, "quantity": base_quantity},
                {"price": plans.addon_monthly.stripe_price_id},
                {"price": plans.calls.stripe_price_id},
            ],
        }
    )
    stripe_webhooks.deliver()
    return Subscription.objects.get(stripe_subscription_id=created.id)


def _items_body(subscription: Subscription) -> list[dict[str, Any]]:
    return [
        {
            "id": row.pk,
            "price": row.price.key,
            "product": row.product.key,
            "quantity": row.quantity,
            "usage_type": row.usage_type,
            "version": row.product_version,
        }
        for row in subscription.items.all()
    ]


def test_a_subscription_shows_its_items_and_is_found_by_any_of_their_products(
    api, tenant_a, plans, stripe_sdk, stripe_webhooks
):
    subscription = _subscription_with_items(api, tenant_a, plans, stripe_sdk(), stripe_webhooks)
    got = api.get(f"/api/v1/subscriptions/{subscription.pk}", key=tenant_a.key).json()
    assert (got["price"], got["product"], got["quantity"]) == ("base-monthly", "base", 2)
    assert [(i["price"], i["product"], i["quantity"], i["usage_type"]) for i in got["items"]] == [
        ("base-monthly", "base", 2, "licensed"),
        ("addon-monthly", "addon", 1, "licensed"),
        ("calls", "usage", None, "metered"),
    ]
    assert got["items"] == _items_body(subscription)
    for product in ("base", "addon", "usage"):
        listed = api.get(f"/api/v1/subscriptions?product={product}", key=tenant_a.key).json()
        assert [s["id"] for s in listed["data"]] == [subscription.pk]


# --- 3. Entitlements ----------------------------------------------------------------------------------------


def _entitlements(api, tenant, customer="user-1"):
    response = api.get("/api/v1/entitlements", key=tenant.key, json_body={"customer": customer})
    assert response.status_code == 200, response.json()
    return {
        row["feature"]: (row["enabled"], row["value"], row["limit"])
        for row in response.json()["entitlements"]
    }


def test_entitlements_sum_the_items_of_a_subscription(api, tenant_a, plans, stripe_sdk, stripe_webhooks):
    """base × 2 (projects 5 per unit, api_calls 1000) + addon × 1 (projects 10 per unit, export) + the metered
    calls item (api_calls 500, counted once)."""
    sdk = stripe_sdk()
    subscription = _subscription_with_items(api, tenant_a, plans, sdk, stripe_webhooks)
    assert _entitlements(api, tenant_a) == {
        "api_calls": (True, 1500, 1500),
        "export": (True, True, None),
        "projects": (True, 20, 20),
    }
    sources = {
        row["feature"]: row["sources"]
        for row in api.get("/api/v1/entitlements", key=tenant_a.key, json_body={"customer": "user-1"}).json()[
            "entitlements"
        ]
    }
    assert [(s["type"], s["id"], s["product"], s["quantity"], s["value"]) for s in sources["projects"]] == [
        ("subscription", subscription.pk, "base", 2, 10),
        ("subscription", subscription.pk, "addon", 1, 10),
    ]

    # The add-on removed at Stripe: its projects and export go with it.
    addon_item = subscription.items.get(price=plans.addon_monthly).stripe_item_id
    sdk.v1.subscriptions.update(
        subscription.stripe_subscription_id,
        {"items": [{"id": addon_item, "deleted": True}], "proration_behavior": "none"},
    )
    stripe_webhooks.deliver()
    assert _entitlements(api, tenant_a) == {
        "api_calls": (True, 1500, 1500),
        "export": (False, False, None),
        "projects": (True, 10, 10),
    }


def test_separate_subscriptions_still_take_the_largest_limit(
    api, tenant_a, plans, stripe_sdk, stripe_webhooks
):
    """Adding up is per subscription: two subscriptions giving the same feature keep the largest-wins rule."""
    sdk = stripe_sdk()
    stripe_customer = _stripe_customer(api, tenant_a, sdk)
    sdk.v1.subscriptions.create(
        {"customer": stripe_customer, "items": [{"price": plans.base_monthly.stripe_price_id}]}
    )
    sdk.v1.subscriptions.create(
        {"customer": stripe_customer, "items": [{"price": plans.calls.stripe_price_id}]}
    )
    stripe_webhooks.deliver()
    assert Subscription.objects.count() == 2
    assert _entitlements(api, tenant_a)["api_calls"] == (True, 1000, 1000)


# --- 4. Checkout `items` ------------------------------------------------------------------------------------

OK = "https://app.example.com/ok"


def _checkout_items(api, tenant, items, customer="user-1", **extra):
    return api.post(
        "/api/v1/checkout/subscription",
        {"customer": customer, "items": items, "success_url": OK, "cancel_url": OK, **extra},
        key=tenant.key,
    )


def _nothing_written():
    from billing.models import CheckoutSession, Payment

    return (Payment.objects.count(), CheckoutSession.objects.count(), Subscription.objects.count())


def test_a_checkout_of_several_items_mirrors_a_subscription_with_all_of_them(
    api, tenant_a, plans, stripe_emulator, stripe_sdk, stripe_webhooks
):
    from billing.models import Invoice, Payment
    from tests.e2e.test_subscription_lifecycle import _complete

    items = [{"price": "base-monthly", "quantity": 2}, {"price": "addon-monthly"}, {"price": "calls"}]
    created = _checkout_items(api, tenant_a, items)

    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["mode"], body["amount_total"], body["currency"]) == ("subscription", 2 * 2000 + 500, "usd")
    line_items = stripe_sdk().v1.checkout.sessions.line_items.list(body["stripe_session_id"]).data
    assert [(li.price.id, li.quantity, li.amount_total) for li in line_items] == [
        (plans.base_monthly.stripe_price_id, 2, 4000),
        (plans.addon_monthly.stripe_price_id, 1, 500),
        (plans.calls.stripe_price_id, None, 0),
    ]
    payment = Payment.objects.get(pk=body["payment"])
    assert [(i["price_key"], i["quantity"], i["amount"]) for i in payment.items] == [
        ("base-monthly", 2, 4000),
        ("addon-monthly", 1, 500),
        ("calls", None, 0),
    ]

    _complete(stripe_emulator, body["stripe_session_id"])
    stripe_webhooks.deliver()

    subscription = Subscription.objects.get()
    assert (subscription.status, subscription.price_id, subscription.quantity) == (
        "active",
        plans.base_monthly.pk,
        2,
    )
    assert [row[:4] for row in _rows(subscription)] == [
        ("addon-monthly", "addon", 1, "licensed"),
        ("base-monthly", "base", 2, "licensed"),
        ("calls", "usage", None, "metered"),
    ]
    invoice = Invoice.objects.get()
    assert (invoice.total, invoice.amount_paid) == (4500, 4500)
    assert Payment.objects.get(pk=body["payment"]).status == "succeeded"
    shown = api.get(f"/api/v1/payments/{body['payment']}", key=tenant_a.key).json()
    assert [(i["price_key"], i["quantity"]) for i in shown["items"]] == [
        ("base-monthly", 2),
        ("addon-monthly", 1),
        ("calls", None),
    ]

    # already_subscribed is per product: any product of the live subscription is refused, another is not.
    before = _nothing_written()
    again = _checkout_items(api, tenant_a, [{"price": "calls"}])
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_subscribed"
    assert again.json()["error"]["param"] == "items[0].price"
    assert _checkout_items(api, tenant_a, [{"price": "base-yearly"}]).status_code == 409
    assert _nothing_written() == before


def test_a_trial_applies_to_an_items_checkout(api, tenant_a, plans, stripe_emulator, stripe_webhooks):
    from tests.e2e.test_subscription_lifecycle import _complete

    created = _checkout_items(
        api, tenant_a, [{"price": "base-monthly"}, {"price": "calls"}], trial_days=14
    ).json()
    assert created["amount_total"] == 0
    _complete(stripe_emulator, created["stripe_session_id"])
    stripe_webhooks.deliver()
    subscription = Subscription.objects.get()
    assert subscription.status == "trialing"
    assert subscription.items.count() == 2


@pytest.mark.parametrize(
    ("items", "extra", "status", "code", "param"),
    [
        (
            [{"price": "base-monthly"}, {"price": "base-yearly"}],
            {},
            400,
            "interval_mismatch",
            "items[1].price",
        ),
        ([{"price": "base-monthly"}, {"price": "addon-eur"}], {}, 400, "currency_mixed", "items[1].price"),
        (
            [{"price": "base-monthly"}, {"price": "base-monthly"}],
            {},
            400,
            "duplicate_price",
            "items[1].price",
        ),
        (
            [{"price": "base-monthly"}, {"price": "calls", "quantity": 3}],
            {},
            400,
            "quantity_not_allowed",
            "items[1].quantity",
        ),
        ([{"price": "base-monthly"}, {"price": "one-off"}], {}, 400, "price_not_recurring", "items[1].price"),
        ([{"price": "base-monthly"}, {"price": "nope"}], {}, 404, "resource_missing", "items[1].price"),
        ([], {}, 400, "parameter_missing", "items"),
        ([{"price": "base-monthly"}], {"price": "base-monthly"}, 400, "parameter_conflict", "price"),
        ([{"price": "base-monthly"}], {"quantity": 2}, 400, "parameter_conflict", "quantity"),
    ],
)
def test_refused_items_write_nothing(api, tenant_a, plans, stripe_sdk, items, extra, status, code, param):
    price_create(plans.addon, "addon-eur", 450, currency="eur", interval="month")
    price_create(plans.addon, "one-off", 900)
    response = _checkout_items(api, tenant_a, items, **extra)
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["param"]) == (status, code, param)
    assert _nothing_written() == (0, 0, 0)
    assert stripe_sdk().v1.checkout.sessions.list({"limit": 100}).data == []


def test_more_than_twenty_items_are_refused(api, tenant_a, plans, stripe_sdk):
    many = [price_create(plans.addon, f"addon-{i}", 100 + i, interval="month").key for i in range(20)]
    response = _checkout_items(api, tenant_a, [{"price": "base-monthly"}] + [{"price": k} for k in many])
    assert (response.status_code, response.json()["error"]["code"], response.json()["error"]["param"]) == (
        400,
        "too_many_items",
        "items",
    )
    assert _nothing_written() == (0, 0, 0)
    assert stripe_sdk().v1.checkout.sessions.list({"limit": 100}).data == []


# --- 5. POST /subscriptions ---------------------------------------------------------------------------------


def _create(api, tenant, body):
    return api.post("/api/v1/subscriptions", body, key=tenant.key)


def _stripe_state(sdk, stripe_customer):
    """What Stripe holds for the customer: subscriptions (any status) and invoices."""
    return (
        [s.id for s in sdk.v1.subscriptions.list({"customer": stripe_customer, "status": "all"}).data],
        [i.id for i in sdk.v1.invoices.list({"customer": stripe_customer}).data],
    )


def _local_state():
    from core.models import AuditLogEntry

    return (
        Subscription.objects.count(),
        SubscriptionItem.objects.count(),
        AuditLogEntry.objects.filter(action__startswith="subscription.").count(),
        list(Customer.objects.values_list("external_id", "currency")),
    )


def test_a_subscription_is_created_on_the_saved_card_and_mirrored_at_once(
    api, tenant_a, plans, stripe_sdk, stripe_webhooks
):
    from core.models import AuditLogEntry

    sdk = stripe_sdk()
    stripe_customer = _stripe_customer(api, tenant_a, sdk)
    body = {"customer": "user-1", "items": [{"price": "base-monthly", "quantity": 2}, {"price": "calls"}]}

    created = _create(api, tenant_a, body)

    assert created.status_code == 201, created.json()
    shown = created.json()
    subscription = Subscription.objects.get()
    assert shown["id"] == subscription.pk
    assert (shown["status"], shown["price"], shown["quantity"], shown["customer"]) == (
        "active",
        "base-monthly",
        2,
        "user-1",
    )
    assert [(i["price"], i["quantity"], i["usage_type"]) for i in shown["items"]] == [
        ("base-monthly", 2, "licensed"),
        ("calls", None, "metered"),
    ]
    assert shown["items"] == _items_body(subscription)
    live = sdk.v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    assert [(i.price.id, i.quantity) for i in live["items"].data] == [
        (plans.base_monthly.stripe_price_id, 2),
        (plans.calls.stripe_price_id, None),
    ]
    invoice = sdk.v1.invoices.retrieve(live.latest_invoice)
    assert (invoice.status, invoice.amount_paid) == ("paid", 4000)
    assert Customer.objects.get().currency == "usd"
    audit = AuditLogEntry.objects.get(action="subscription.created")
    assert (audit.target_id, audit.before, audit.after) == (
        subscription.pk,
        None,
        {
            "price": "base-monthly",
            "quantity": 2,
            "items": [["base-monthly", 2], ["calls", None]],
            "status": "active",
            "cancel_at_period_end": False,
        },
    )

    # Stripe's events of the creation change nothing more; a second request is already_subscribed.
    stripe_webhooks.deliver()
    assert Subscription.objects.count() == 1
    assert _items_body(Subscription.objects.get()) == shown["items"]
    before = (_local_state(), _stripe_state(sdk, stripe_customer))
    again = _create(api, tenant_a, {"customer": "user-1", "price": "addon-monthly", "quantity": 1})
    assert again.status_code == 201  # another product: fine
    refused = _create(api, tenant_a, {"customer": "user-1", "price": "base-yearly"})
    assert (refused.status_code, refused.json()["error"]["code"], refused.json()["error"]["param"]) == (
        409,
        "already_subscribed",
        "price",
    )
    assert Subscription.objects.count() == 2
    assert before[0][0] == 1


def test_a_declined_card_leaves_nothing_behind(api, tenant_a, plans, stripe_sdk, stripe_webhooks):
    sdk = stripe_sdk()
    api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant_a.key)
    stripe_customer = customer_ensure_stripe(customer=Customer.objects.get(external_id="user-1"))
    pm = sdk.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": stripe_customer})
    sdk.v1.customers.update(stripe_customer, {"invoice_settings": {"default_payment_method": pm.id}})
    before = _local_state()
    events_before = [e.id for e in sdk.v1.events.list({"limit": 100}).auto_paging_iter()]

    declined = _create(
        api, tenant_a, {"customer": "user-1", "items": [{"price": "base-monthly"}, {"price": "calls"}]}
    )

    assert declined.status_code == 402, declined.json()
    error = declined.json()["error"]
    assert (error["type"], error["code"], error["decline_code"]) == (
        "card_error",
        "card_declined",
        "generic_decline",
    )
    assert _local_state() == before
    assert _stripe_state(sdk, stripe_customer) == ([], [])
    # All or nothing at Stripe: not even an event of the attempt.
    assert [e.id for e in sdk.v1.events.list({"limit": 100}).auto_paging_iter()] == events_before
    assert sdk.v1.payment_intents.list({"customer": stripe_customer}).data == []
    stripe_webhooks.deliver()
    assert _local_state() == before


@pytest.mark.parametrize("stripe_side", ["no_stripe_customer", "no_default_card"])
def test_no_saved_payment_method_is_refused(api, tenant_a, plans, stripe_sdk, stripe_side):
    sdk = stripe_sdk()
    api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant_a.key)
    stripe_customer = None
    if stripe_side == "no_default_card":
        stripe_customer = _stripe_customer(api, tenant_a, sdk, card=False)
    before = _local_state()
    response = _create(api, tenant_a, {"customer": "user-1", "price": "base-monthly"})
    assert (response.status_code, response.json()["error"]["code"], response.json()["error"]["param"]) == (
        400,
        "no_payment_method",
        "customer",
    )
    assert _local_state() == before
    if stripe_customer:
        assert _stripe_state(sdk, stripe_customer) == ([], [])


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"customer": "nobody", "price": "base-monthly"}, 404, "resource_missing", "customer"),
        ({"customer": "user-1"}, 400, "parameter_missing", "price"),
        ({"customer": "user-1", "price": "calls", "quantity": 2}, 400, "quantity_not_allowed", "quantity"),
        ({"customer": "user-1", "price": "one-off"}, 400, "price_not_recurring", "price"),
        (
            {"customer": "user-1", "items": [{"price": "base-monthly"}, {"price": "base-yearly"}]},
            400,
            "interval_mismatch",
            "items[1].price",
        ),
        (
            {"customer": "user-1", "price": "base-monthly", "proration_behavior": "x"},
            400,
            "invalid",
            "proration_behavior",
        ),
    ],
)
def test_bad_create_requests_write_nothing(api, tenant_a, plans, stripe_sdk, body, status, code, param):
    price_create(plans.addon, "one-off", 900)
    stripe_customer = _stripe_customer(api, tenant_a, stripe_sdk())
    before = _local_state()
    response = _create(api, tenant_a, body)
    error = response.json()["error"]
    assert (response.status_code, error["param"]) == (status, param), error
    if code != "invalid":
        assert error["code"] == code
    assert _local_state() == before
    assert _stripe_state(stripe_sdk(), stripe_customer) == ([], [])


def test_another_projects_customer_and_price_are_not_found(
    api, tenant_a, tenant_b, plans, catalog_b, stripe_sdk
):
    _stripe_customer(api, tenant_a, stripe_sdk())
    api.post("/api/v1/customers", {"external_id": "user-b"}, key=tenant_b.key)
    before = _local_state()
    for body, param in (
        ({"customer": "user-1", "price": "pro-monthly"}, "customer"),
        ({"customer": "user-b", "price": plans.base_monthly.pk}, "price"),
        ({"customer": "user-b", "items": [{"price": "base-monthly"}]}, "items[0].price"),
    ):
        response = _create(api, tenant_b, body)
        assert (
            response.status_code,
            response.json()["error"]["type"],
            response.json()["error"]["param"],
        ) == (
            404,
            "not_found",
            param,
        )
    assert _local_state() == before


def test_a_create_whose_answer_was_lost_is_replayed_by_stripe_not_repeated(
    api, tenant_a, plans, stripe_emulator, stripe_sdk
):
    from urllib.parse import urlsplit

    import stripe

    from stripe_emulator.sdk import EmulatorHTTPClient
    from stripe_gateway.client import install_http_client

    class LosesAnswers(EmulatorHTTPClient):
        def __init__(self, emulator: Any) -> None:
            super().__init__(emulator)
            self.keys: list[str] = []
            self.lose = 1

        def request(self, method: str, url: str, headers: Any, post_data: Any = None, **kwargs: Any) -> Any:
            answer = super().request(method, url, headers, post_data, **kwargs)
            if method.lower() == "post" and urlsplit(url).path == "/v1/subscriptions":
                self.keys.append(dict(headers or {}).get("Idempotency-Key", ""))
                if self.lose:
                    self.lose -= 1
                    raise stripe.APIConnectionError(
                        "connection reset after Stripe answered", should_retry=True
                    )
            return answer

    sdk = stripe_sdk()
    stripe_customer = _stripe_customer(api, tenant_a, sdk)
    transport = LosesAnswers(stripe_emulator)
    install_http_client(transport)
    body = {"customer": "user-1", "items": [{"price": "base-monthly"}, {"price": "calls"}]}

    first = _create(api, tenant_a, body)
    if first.status_code != 201:  # the SDK did not retry by itself: the tenant does
        assert first.status_code == 503, first.json()
        assert Subscription.objects.count() == 0
        first = _create(api, tenant_a, body)

    assert first.status_code == 201, first.json()
    customer_pk = Customer.objects.get().pk
    assert len(transport.keys) == 2
    assert transport.keys[0] == transport.keys[1]
    assert transport.keys[0].startswith(f"subscription:create:{customer_pk}:")
    assert len(_stripe_state(sdk, stripe_customer)[0]) == 1
    assert Subscription.objects.get().stripe_subscription_id == _stripe_state(sdk, stripe_customer)[0][0]


# --- 6. PATCH … items and its preview ------------------------------------------------------------------------


def _prorate(amount: int, remaining: int, length: int) -> int:
    # Stripe's proration: by the second over the period, rounded half away from zero.
    value = (2 * abs(amount) * remaining + length) // (2 * length)
    return value if amount >= 0 else -value


def _created_with_items(api, tenant, sdk):
    _stripe_customer(api, tenant, sdk)
    body = {
        "customer": "user-1",
        "items": [{"price": "base-monthly", "quantity": 2}, {"price": "addon-monthly"}, {"price": "calls"}],
    }
    created = api.post("/api/v1/subscriptions", body, key=tenant.key)
    assert created.status_code == 201, created.json()
    return Subscription.objects.get()


def test_mrr_counts_every_licensed_item_of_a_subscription(api, tenant_a, plans, stripe_sdk, stripe_webhooks):
    """The base plan (2 × 20.00) and the add-on (5.00) recur by the month; the metered price bills usage."""
    from django.utils import timezone

    from backoffice import dashboard

    _created_with_items(api, tenant_a, stripe_sdk())
    stripe_webhooks.deliver()

    assert api.get("/api/v1/metrics/revenue", key=tenant_a.key).json()["mrr"] == {"usd": 4500}
    chart = dashboard.history(timezone.now())["mrr"]
    assert [(c["title"], c["bars"][-1]["value"]) for c in chart] == [
        ("MRR at the end of each month (USD)", 4500)
    ]


def test_items_change_replaces_removes_and_adds_with_exact_prorations(
    api, tenant_a, plans, stripe_sdk, stripe_webhooks
):
    import time_machine
    from django.utils import timezone

    from core.models import AuditLogEntry

    sdk = stripe_sdk()
    base_plus = price_create(plans.base, "base-plus-monthly", 3000, interval="month")
    extra = products.product_create(project=tenant_a.project, actor=ACTOR, key="extra", name="Extra")
    extra_monthly = price_create(extra, "extra-monthly", 700, interval="month")
    subscription = _created_with_items(api, tenant_a, sdk)
    stripe_webhooks.deliver()
    live = sdk.v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    stripe_items = {i.price.id: i.id for i in live["items"].data}
    start, end = live["items"].data[0].current_period_start, live["items"].data[0].current_period_end
    base_row = subscription.items.get(price=plans.base_monthly).pk
    path = f"/api/v1/subscriptions/{subscription.pk}"
    # base-monthly → base-plus-monthly on the same item (2 seats kept), the add-on removed, extra × 3 added,
    # calls kept.
    body = {
        "items": [
            {"price": "base-plus-monthly"},
            {"price": "calls"},
            {"price": "extra-monthly", "quantity": 3},
        ],
        "proration_behavior": "always_invoice",
    }
    with time_machine.travel(timezone.now() + timedelta(days=10), tick=False):
        now = int(timezone.now().timestamp())
        left, length = end - now, end - start
        expected = (
            _prorate(-2 * 2000, left, length)
            + _prorate(-500, left, length)
            + _prorate(2 * 3000, left, length)
            + _prorate(3 * 700, left, length)
        )
        preview = api.post(f"{path}/preview", body, key=tenant_a.key)
        assert preview.status_code == 200, preview.json()
        assert preview.json()["amount_due"] == expected
        assert sorted(line["amount"] for line in preview.json()["lines"]) == sorted(
            [
                _prorate(-2 * 2000, left, length),
                _prorate(-500, left, length),
                _prorate(2 * 3000, left, length),
                _prorate(3 * 700, left, length),
            ]
        )
        assert len(sdk.v1.invoices.list({"limit": 100}).data) == 1  # the preview wrote nothing

        changed = api.patch(path, body, key=tenant_a.key)

    assert changed.status_code == 200, changed.json()
    shown = changed.json()
    assert (shown["price"], shown["quantity"]) == ("base-plus-monthly", 2)
    assert sorted((i["price"], i["quantity"]) for i in shown["items"]) == [
        ("base-plus-monthly", 2),
        ("calls", None),
        ("extra-monthly", 3),
    ]
    assert base_row in [i["id"] for i in shown["items"]]  # the replaced item keeps its id
    after = sdk.v1.subscriptions.retrieve(subscription.stripe_subscription_id, {"expand": ["latest_invoice"]})
    assert sorted((i.price.id, i.quantity, i.id) for i in after["items"].data) == sorted(
        [
            (base_plus.stripe_price_id, 2, stripe_items[plans.base_monthly.stripe_price_id]),
            (plans.calls.stripe_price_id, None, stripe_items[plans.calls.stripe_price_id]),
            (extra_monthly.stripe_price_id, 3, after["items"].data[-1].id),
        ]
    )
    assert (after.latest_invoice.billing_reason, after.latest_invoice.amount_paid) == (
        "subscription_update",
        expected,
    )
    assert [line["amount"] for line in preview.json()["lines"]] == [
        line.amount for line in after.latest_invoice.lines.data
    ]
    stripe_webhooks.deliver()
    assert _items_body(Subscription.objects.get()) == shown["items"]
    assert sorted(
        AuditLogEntry.objects.filter(action="subscription.changed").values_list("after", flat=True)[0][
            "items"
        ]
    ) == [
        ["base-plus-monthly", 2],
        ["calls", None],
        ["extra-monthly", 3],
    ]

    # The same change again: Stripe has it, nothing is sent.
    invoices = len(sdk.v1.invoices.list({"limit": 100}).data)
    again = api.patch(path, body, key=tenant_a.key)
    assert again.status_code == 200
    assert len(sdk.v1.invoices.list({"limit": 100}).data) == invoices


def test_a_quantity_not_given_is_kept_and_a_given_one_is_sent(
    api, tenant_a, plans, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    subscription = _created_with_items(api, tenant_a, sdk)
    path = f"/api/v1/subscriptions/{subscription.pk}"
    changed = api.patch(
        path,
        {"items": [{"price": "base-monthly", "quantity": 5}, {"price": "addon-monthly"}, {"price": "calls"}]},
        key=tenant_a.key,
    )
    assert changed.status_code == 200, changed.json()
    assert [(i["price"], i["quantity"]) for i in changed.json()["items"]] == [
        ("base-monthly", 5),
        ("addon-monthly", 1),
        ("calls", None),
    ]


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        (
            {"items": [{"price": "base-monthly"}, {"price": "base-yearly"}]},
            400,
            "interval_mismatch",
            "items[1].price",
        ),
        ({"items": [{"price": "calls", "quantity": 2}]}, 400, "quantity_not_allowed", "items[0].quantity"),
        ({"items": [{"price": "base-monthly"}], "quantity": 2}, 400, "parameter_conflict", "quantity"),
        ({"items": [{"price": "addon-eur"}]}, 409, "currency_mismatch", "items[0].price"),
        ({"items": []}, 400, "parameter_missing", "items"),
    ],
)
@pytest.mark.parametrize("operation", ["patch", "preview"])
def test_bad_items_changes_write_nothing(
    api, tenant_a, plans, stripe_sdk, body, status, code, param, operation
):
    from core.models import AuditLogEntry

    price_create(plans.addon, "addon-eur", 450, currency="eur", interval="month")
    sdk = stripe_sdk()
    subscription = _created_with_items(api, tenant_a, sdk)
    before = (
        sdk.v1.subscriptions.retrieve(subscription.stripe_subscription_id).to_dict(),
        len(sdk.v1.invoices.list({"limit": 100}).data),
        AuditLogEntry.objects.count(),
    )
    path = f"/api/v1/subscriptions/{subscription.pk}"
    response = (
        api.patch(path, body, key=tenant_a.key)
        if operation == "patch"
        else api.post(f"{path}/preview", body, key=tenant_a.key)
    )
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["param"]) == (status, code, param)
    assert before == (
        sdk.v1.subscriptions.retrieve(subscription.stripe_subscription_id).to_dict(),
        len(sdk.v1.invoices.list({"limit": 100}).data),
        AuditLogEntry.objects.count(),
    )


def test_another_projects_subscription_is_not_found_for_an_items_change(
    api, tenant_a, tenant_b, plans, stripe_sdk
):
    subscription = _created_with_items(api, tenant_a, stripe_sdk())
    body = {"items": [{"price": "base-monthly"}]}
    for response in (
        api.patch(f"/api/v1/subscriptions/{subscription.pk}", body, key=tenant_b.key),
        api.post(f"/api/v1/subscriptions/{subscription.pk}/preview", body, key=tenant_b.key),
    ):
        assert response.status_code == 404


# --- 7. Metered usage billed in arrears ----------------------------------------------------------------------


def test_base_plus_metered_renewal_bills_the_reported_usage_exactly(
    api, tenant_a, plans, stripe_emulator, stripe_sdk, stripe_webhooks
):
    """Subscribe to base + metered through Checkout `items`, record usage, let the period end: the renewal
    invoice bills the base in advance and the period's usage in arrears, quantity × unit amount."""
    from billing.models import Invoice
    from entitlements.models import UsageEvent
    from tests.e2e.test_subscription_lifecycle import _complete

    created = _checkout_items(api, tenant_a, [{"price": "base-monthly"}, {"price": "calls"}]).json()
    _complete(stripe_emulator, created["stripe_session_id"])
    stripe_webhooks.deliver()
    subscription = Subscription.objects.get()
    # Usage of another customer, who has no metered item, is counted but not reported.
    events = [
        {"id": "u1", "customer": "user-1", "feature": "api_calls", "quantity": 40},
        {"id": "u2", "customer": "user-1", "feature": "api_calls", "quantity": 2},
        {"id": "x1", "customer": "user-2", "feature": "api_calls", "quantity": 5},
    ]
    assert api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key).json() == {
        "accepted": 3,
        "duplicates": 0,
    }
    assert dict(UsageEvent.objects.values_list("event_id", "meter_status")) == {
        "u1": "reported",
        "u2": "reported",
        "x1": "skipped",
    }
    # What the period holds and will cost, as GET /usage shows it (the metered item's price, not the base's).
    usage = api.get("/api/v1/usage?customer=user-1&feature=api_calls", key=tenant_a.key).json()
    assert (usage["quantity"], usage["billed_quantity"], usage["price"], usage["amount_due_estimate"]) == (
        42,
        42,
        "calls",
        42 * 3,
    )
    other = api.get("/api/v1/usage?customer=user-2&feature=api_calls", key=tenant_a.key).json()
    assert (other["quantity"], other["billed_quantity"], other["price"], other["amount_due_estimate"]) == (
        5,
        0,
        None,
        0,
    )

    live = stripe_sdk().v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    stripe_emulator.advance(live["items"].data[0].current_period_end - stripe_emulator.clock.now() + 60)
    stripe_webhooks.deliver()

    renewal = Invoice.objects.get(billing_reason="subscription_cycle")
    lines = sorted((line["stripe_price_id"], line["quantity"], line["amount"]) for line in renewal.lines)
    assert lines == sorted(
        [
            (plans.base_monthly.stripe_price_id, 1, 2000),
            (plans.calls.stripe_price_id, 42, 42 * 3),
        ]
    )
    assert (renewal.total, renewal.amount_paid, renewal.status) == (2000 + 126, 2000 + 126, "paid")


def test_a_price_or_quantity_change_is_about_the_primary_item(
    api, tenant_a, plans, stripe_sdk, stripe_webhooks
):
    """Stripe lists the metered item first here: `quantity` still changes the base plan's seats."""
    sdk = stripe_sdk()
    stripe_customer = _stripe_customer(api, tenant_a, sdk)
    created = sdk.v1.subscriptions.create(
        {
            "customer": stripe_customer,
            "items": [{"price": plans.calls.stripe_price_id}, {"price": plans.base_monthly.stripe_price_id}],
        }
    )
    stripe_webhooks.deliver()
    subscription = Subscription.objects.get()
    path = f"/api/v1/subscriptions/{subscription.pk}"

    changed = api.patch(path, {"quantity": 4, "proration_behavior": "none"}, key=tenant_a.key)

    assert changed.status_code == 200, changed.json()
    assert (changed.json()["price"], changed.json()["quantity"]) == ("base-monthly", 4)
    live = sdk.v1.subscriptions.retrieve(created.id)
    assert [(i.price.id, i.quantity) for i in live["items"].data] == [
        (plans.calls.stripe_price_id, None),
        (plans.base_monthly.stripe_price_id, 4),
    ]
    preview = api.post(f"{path}/preview", {"quantity": 6, "proration_behavior": "none"}, key=tenant_a.key)
    assert preview.status_code == 200, preview.json()


def test_plan_credits_of_every_item_add_up_for_the_period(api, tenant_a, plans, stripe_sdk, stripe_webhooks):
    from catalog.models import ProductFeature

    tokens = Feature.objects.create(
        project=tenant_a.project, key="tokens", name="tokens", type=Feature.Type.CREDITS
    )
    ProductFeature.objects.create(product=plans.base, feature=tokens, value=100, per_unit=True)
    ProductFeature.objects.create(product=plans.addon, feature=tokens, value=50, per_unit=False)
    _created_with_items(api, tenant_a, stripe_sdk())  # base × 2, addon, calls
    stripe_webhooks.deliver()

    credits = api.get(
        "/api/v1/credits", key=tenant_a.key, json_body={"customer": "user-1", "feature": "tokens"}
    )

    assert credits.status_code == 200, credits.json()
    assert credits.json()["balance"] == 2 * 100 + 50
    assert [(e["type"], e["amount"]) for e in credits.json()["ledger"]] == [("grant", 250)]


def test_a_failed_items_upgrade_changes_nothing(api, tenant_a, plans, stripe_sdk, stripe_webhooks):
    """Adding an item costs more: it defaults to pending_if_incomplete, so a declined payment leaves the items."""
    sdk = stripe_sdk()
    subscription = _created_with_items(api, tenant_a, sdk)
    stripe_webhooks.deliver()
    failing = sdk.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", {"customer": subscription.customer.stripe_customer_id}
    )
    sdk.v1.subscriptions.update(subscription.stripe_subscription_id, {"default_payment_method": failing.id})
    stripe_webhooks.deliver()
    before = _items_body(Subscription.objects.get())
    extra = products.product_create(project=tenant_a.project, actor=ACTOR, key="extra", name="Extra")
    price_create(extra, "extra-monthly", 700, interval="month")

    response = api.patch(
        f"/api/v1/subscriptions/{subscription.pk}",
        {
            "items": [
                {"price": "base-monthly"},
                {"price": "addon-monthly"},
                {"price": "calls"},
                {"price": "extra-monthly"},
            ],
            "proration_behavior": "always_invoice",
        },
        key=tenant_a.key,
    )

    assert response.status_code == 200, response.json()
    assert response.json()["items"] == before  # the upgrade waits for a payment that failed
    stripe_webhooks.deliver()
    assert _items_body(Subscription.objects.get()) == before
    live = sdk.v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    assert len(live["items"].data) == 3


def test_a_created_subscription_takes_trial_days_and_proration_behavior(api, tenant_a, plans, stripe_sdk):
    sdk = stripe_sdk()
    _stripe_customer(api, tenant_a, sdk)
    body = {
        "customer": "user-1",
        "price": "base-monthly",
        "quantity": 3,
        "trial_days": 7,
        "proration_behavior": "none",
    }
    created = _create(api, tenant_a, body)
    assert created.status_code == 201, created.json()
    assert (created.json()["status"], created.json()["quantity"]) == ("trialing", 3)
    live = sdk.v1.subscriptions.retrieve(
        created.json()["stripe_subscription_id"], {"expand": ["latest_invoice"]}
    )
    assert live.trial_end - live.trial_start == 7 * 86400
    assert (live.latest_invoice.amount_due, live.latest_invoice.status) == (0, "paid")


@pytest.mark.parametrize("seconds_apart", [0, 30])
def test_items_events_in_any_order_and_twice_end_in_stripes_state(
    api, tenant_a, plans, stripe_emulator, stripe_sdk, stripe_webhooks, seconds_apart
):
    """Three states of the items (created; add-on removed; 5 seats) whose events arrive newest first, then all
    again: the mirror ends with Stripe's current items. Same-second events are settled by a re-fetch."""
    from tests.e2e.test_money_integrity import Captured

    captured = Captured(stripe_webhooks)
    sdk = stripe_sdk()
    stripe_customer = _stripe_customer(api, tenant_a, sdk)
    created = sdk.v1.subscriptions.create(
        {
            "customer": stripe_customer,
            "items": [
                {"price": plans.base_monthly.stripe_price_id, "quantity": 2},
                {"price": plans.addon_monthly.stripe_price_id},
                {"price": plans.calls.stripe_price_id},
            ],
        }
    )
    ids = {item.price.id: item.id for item in created["items"].data}
    stripe_emulator.advance(seconds_apart)
    sdk.v1.subscriptions.update(
        created.id,
        {
            "items": [{"id": ids[plans.addon_monthly.stripe_price_id], "deleted": True}],
            "proration_behavior": "none",
        },
    )
    stripe_emulator.advance(seconds_apart)
    sdk.v1.subscriptions.update(
        created.id,
        {
            "items": [{"id": ids[plans.base_monthly.stripe_price_id], "quantity": 5}],
            "proration_behavior": "none",
        },
    )
    events = captured.collect()
    subscription_events = [e for e in events if e["type"].startswith("customer.subscription.")]
    assert len(subscription_events) == 3
    others = [e for e in events if e not in subscription_events]

    captured.deliver(others + list(reversed(subscription_events)))
    captured.deliver(subscription_events)

    subscription = Subscription.objects.get()
    assert (subscription.price_id, subscription.quantity) == (plans.base_monthly.pk, 5)
    assert _rows(subscription) == [
        ("base-monthly", "base", 5, "licensed", ids[plans.base_monthly.stripe_price_id]),
        ("calls", "usage", None, "metered", ids[plans.calls.stripe_price_id]),
    ]


def test_a_created_subscription_redeems_a_promotion_code_and_a_bad_one_writes_nothing(
    api, tenant_a, plans, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    stripe_customer = _stripe_customer(api, tenant_a, sdk)
    coupon = {"key": "launch", "percent_off": "25", "duration": "once"}
    assert api.post("/api/v1/coupons", coupon, key=tenant_a.key).status_code == 201
    promotion = {"code": "LAUNCH25", "coupon": "launch", "max_redemptions": 1}
    assert api.post("/api/v1/promotion_codes", promotion, key=tenant_a.key).status_code == 201
    before = _local_state()

    unknown = _create(
        api, tenant_a, {"customer": "user-1", "price": "base-monthly", "promotion_code": "NOPE"}
    )

    assert unknown.status_code == 400
    assert (unknown.json()["error"]["code"], unknown.json()["error"]["param"]) == (
        "promotion_code_invalid",
        "promotion_code",
    )
    assert _local_state() == before
    assert _stripe_state(sdk, stripe_customer) == ([], [])

    created = _create(
        api,
        tenant_a,
        {"customer": "user-1", "price": "base-monthly", "quantity": 2, "promotion_code": "launch25"},
    )

    assert created.status_code == 201, created.json()
    stripe_webhooks.deliver()
    first = sdk.v1.invoices.list({"customer": stripe_customer}).data[0]
    assert (first.subtotal, first.total, first.amount_paid) == (4000, 3000, 3000)  # 2 × 20.00, 25 % off
    subscription = api.get(f"/api/v1/subscriptions/{created.json()['id']}", key=tenant_a.key).json()
    assert (subscription["discount"]["coupon"], subscription["discount"]["percent_off"]) == ("launch", 25.0)
    invoice = api.get("/api/v1/invoices?customer=user-1", key=tenant_a.key).json()["data"][0]
    assert (invoice["subtotal"], invoice["discount"], invoice["total"]) == (4000, 1000, 3000)


# --- 8. already_subscribed, per product, under concurrency ----------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_one_product_make_one_subscription(api, tenant_a, plans, stripe_sdk):
    """Two `POST /subscriptions` of the same product (its monthly and its yearly price) at once, on real
    threads: the customer's subscription writes are serialized, so the second sees the first's subscription —
    one 201, one 409 `already_subscribed`, one subscription at Stripe and here."""
    import json
    import threading

    from django.db import connection
    from django.test import Client

    sdk = stripe_sdk()
    stripe_customer = _stripe_customer(api, tenant_a, sdk)
    bodies = [
        {"customer": "user-1", "price": "base-monthly", "quantity": 2},
        {"customer": "user-1", "items": [{"price": "base-yearly"}]},
    ]
    barrier = threading.Barrier(len(bodies))
    answers: list[tuple[int, dict[str, Any]]] = []

    def create(body: dict[str, Any]) -> None:
        try:
            barrier.wait()
            response = Client().post(
                "/api/v1/subscriptions",
                data=json.dumps(body),
                content_type="application/json",
                headers={"Authorization": f"Bearer {tenant_a.key}"},
            )
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(status for status, _ in answers) == [201, 409], answers
    refused = next(body for status, body in answers if status == 409)["error"]
    assert refused["code"] == "already_subscribed"
    assert refused["param"] in ("price", "items[0].price")
    created = next(body for status, body in answers if status == 201)
    assert [s.id for s in sdk.v1.subscriptions.list({"customer": stripe_customer, "status": "all"}).data] == [
        created["stripe_subscription_id"]
    ]
    assert list(Subscription.objects.values_list("pk", flat=True)) == [created["id"]]


def test_an_items_change_cannot_add_a_product_another_subscription_has(
    api, tenant_a, plans, stripe_sdk, stripe_webhooks
):
    """The add-on is on a second subscription of the customer: adding it to the first (as an item, or as the
    main price) is 409 `already_subscribed` naming the item, and its preview says so too; nothing changes. A
    change that adds no product goes through."""
    from core.models import AuditLogEntry

    sdk = stripe_sdk()
    _stripe_customer(api, tenant_a, sdk)
    first = _create(
        api, tenant_a, {"customer": "user-1", "items": [{"price": "base-monthly"}, {"price": "calls"}]}
    ).json()
    second = _create(api, tenant_a, {"customer": "user-1", "price": "addon-monthly"})
    assert second.status_code == 201, second.json()
    stripe_webhooks.deliver()
    path = f"/api/v1/subscriptions/{first['id']}"
    before = (
        sdk.v1.subscriptions.retrieve(first["stripe_subscription_id"]).to_dict(),
        len(sdk.v1.invoices.list({"limit": 100}).data),
        _items_body(Subscription.objects.get(pk=first["id"])),
        AuditLogEntry.objects.filter(action="subscription.changed").count(),
    )

    for body, param in (
        (
            {"items": [{"price": "base-monthly"}, {"price": "calls"}, {"price": "addon-monthly"}]},
            "items[2].price",
        ),
        ({"price": "addon-monthly"}, "price"),
    ):
        for operation in ("patch", "preview"):
            response = (
                api.patch(path, body, key=tenant_a.key)
                if operation == "patch"
                else api.post(f"{path}/preview", body, key=tenant_a.key)
            )
            error = response.json()["error"]
            assert (response.status_code, error["code"], error["param"]) == (409, "already_subscribed", param)
            assert second.json()["id"] in error["message"]

    stripe_webhooks.deliver()
    assert before == (
        sdk.v1.subscriptions.retrieve(first["stripe_subscription_id"]).to_dict(),
        len(sdk.v1.invoices.list({"limit": 100}).data),
        _items_body(Subscription.objects.get(pk=first["id"])),
        AuditLogEntry.objects.filter(action="subscription.changed").count(),
    )
    kept = api.patch(
        path,
        {
            "items": [{"price": "base-monthly", "quantity": 3}, {"price": "calls"}],
            "proration_behavior": "none",
        },
        key=tenant_a.key,
    )
    assert kept.status_code == 200, kept.json()
    assert [(i["price"], i["quantity"]) for i in kept.json()["items"]] == [
        ("base-monthly", 3),
        ("calls", None),
    ]
