"""Building blocks of the entitlement tests: features, products with feature values, subscriptions and
payments as the ORM stores them, and billing's hand-off of their facts to entitlements (`hand_subscription`,
`hand`: what billing's mirror and payment transition call with exactly such rows)."""

import time
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from billing.models import Payment, Subscription
from billing.services.entitlement_facts import payment_facts_hand, subscription_facts_hand
from catalog.models import Feature, Price, Product, ProductAccess, ProductFeature
from catalog.rules import COUNTED_TYPES, FeatureValue, feature_value_parse
from customers.models import Customer
from tests.billing.factories import PriceFactory, ProductFactory
from tests.billing.payment_factories import CustomerFactory, PaymentFactory, SubscriptionFactory
from tests.entitlements.factories import FeatureFactory


def feature(project: Any, key: str, type: str = Feature.Type.BOOLEAN) -> Feature:
    return FeatureFactory(project=project, key=key, type=type)


def product(project: Any, key: str, values: dict[Feature, Any], duration_days: int | None = None) -> Product:
    """A product giving `values` ({feature: value in the API's shape, e.g. {"per_unit": n}})."""
    made = ProductFactory(project=project, key=key)
    for feat, value in values.items():
        given = (
            feature_value_parse(feature_type=feat.type, value=value, param=feat.key)
            if feat.type in COUNTED_TYPES
            else FeatureValue(value)
        )
        ProductFeature.objects.create(
            product=made,
            feature=feat,
            value=given.value,
            per_unit=given.per_unit,
            overage=given.overage,
            rollover=given.rollover,
            windows=given.windows,
            cap=given.cap,
            credits=given.credits,
            per_entity=given.per_entity,
        )
    if duration_days is not None:
        ProductAccess.objects.create(product=made, duration_days=duration_days)
    return made


def customer(project: Any, external_id: str = "user-1") -> Customer:
    return Customer.objects.filter(project=project, external_id=external_id).first() or CustomerFactory(
        project=project, external_id=external_id
    )


def subscribe(
    cust: Customer,
    prod: Product,
    *,
    status: str = Subscription.Status.ACTIVE,
    quantity: int = 1,
    start: datetime | None = None,
    days: int = 30,
    interval: str = "month",
    **fields: Any,
) -> Subscription:
    start = start or timezone.now() - timedelta(days=1)
    price = PriceFactory(
        project=cust.project, product=prod, type=Price.Type.RECURRING, interval=interval, unit_amount=1000
    )
    subscription = SubscriptionFactory(
        project=cust.project,
        customer=cust,
        price=price,
        product=prod,
        status=status,
        quantity=quantity,
        current_period_start=start,
        current_period_end=start + timedelta(days=days),
        **fields,
    )
    hand_subscription(subscription)
    return subscription


def hand_subscription(subscription: Subscription) -> None:
    """Billing's mirror handing entitlements the subscription as stored (its items from their rows)."""
    subscription = Subscription.objects.select_related("price").get(pk=subscription.pk)
    items = [({"quantity": item.quantity}, item.price) for item in subscription.items.select_related("price")]
    subscription_facts_hand(subscription=subscription, price=subscription.price, items=items)


def hand(*, payment: Payment) -> None:
    """Billing's payment transition handing entitlements the payment's facts, as stored, after its status or
    dispute changed."""
    payment_facts_hand(payment=Payment.objects.select_related("customer").get(pk=payment.pk))


def paid_payment(cust: Customer, prod: Product, quantity: int = 1, **fields: Any) -> Payment:
    """A succeeded one-time payment for `quantity` × `prod`."""
    price = PriceFactory(project=cust.project, product=prod, type=Price.Type.ONE_TIME)
    defaults: dict[str, Any] = {
        "status": Payment.Status.SUCCEEDED,
        "succeeded_at": timezone.now(),
        "items": [
            {
                "price": price.pk,
                "price_key": price.key,
                "product": prod.pk,
                "quantity": quantity,
                "unit_amount": price.unit_amount,
            }
        ],
    }
    defaults.update(fields)
    return PaymentFactory(project=cust.project, customer=cust, **defaults)


def check(api: Any, key: str, customer: str, feature: str, quantity: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"customer": customer, "feature": feature}
    if quantity is not None:
        params["quantity"] = quantity
    response = api.get("/api/v1/entitlements/check", key=key, json_body=params)
    assert response.status_code == 200, response.json()
    return dict(response.json())


def listed(api: Any, key: str, customer: str) -> dict[str, dict[str, Any]]:
    response = api.get("/api/v1/entitlements", key=key, json_body={"customer": customer})
    assert response.status_code == 200, response.json()
    return {row["feature"]: row for row in response.json()["entitlements"]}


def until_waiting_on_a_lock() -> None:
    """Waits (20 s at most) until another database session waits for a lock (PostgreSQL)."""
    from django.db import connection

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                return
        time.sleep(0.02)
    raise AssertionError("no session waited for a lock within 20 s")
