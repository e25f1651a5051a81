"""The rest of the client's surface on the live server: carts, the payment flows, refunds and cancels,
endpoints and events, keys, catalog updates, metrics, the platform's namespace, and the escape hatch."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tollgate_client import AuthenticationError, InvalidRequestError, NotFoundError, Tollgate
from tollgate_client.types import (
    Cart,
    Payment,
    RevenueRecognition,
    RevenueRecognitionBalance,
    RevenueRecognitionCurrency,
    RevenueRecognitionMonth,
    RevenueRecognitionProduct,
)
from tollgate_client.webhooks import construct_event

from billing.models import Payment as PaymentRow
from tests.clients.conftest import CANCEL, OK, complete_checkout

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_cart_from_lines_to_checkout(tollgate, catalog, stripe_emulator, stripe_webhooks):
    cart = tollgate.carts.create(customer="user-1")
    assert (cart.object, cart.items, cart.amount_total) == ("cart", [], 0)
    cart = tollgate.carts.items.add(cart.id, price="credits-1000")
    cart = tollgate.carts.items.add(cart.id, price="sticker", quantity=2)
    assert isinstance(cart, Cart)
    assert [(i.price, i.quantity, i.amount) for i in cart.items] == [
        ("credits-1000", 1, 1500),
        ("sticker", 2, 400),
    ]
    sticker = cart.items[1]
    cart = tollgate.carts.items.update(cart.id, sticker.id, quantity=3)
    assert (cart.amount_total, cart.currency) == (2100, "usd")
    tollgate.carts.items.delete(cart.id, sticker.id)
    assert tollgate.carts.retrieve(cart.id).amount_total == 1500

    session = tollgate.checkout.cart(customer="user-1", cart=cart.id, success_url=OK, cancel_url=CANCEL)
    assert (session.mode, session.amount_total) == ("payment", 1500)
    complete_checkout(stripe_emulator, session.stripe_session_id)
    stripe_webhooks.deliver()
    assert tollgate.payments.retrieve(session.payment).status == "succeeded"

    other = tollgate.carts.create(customer="user-1")
    tollgate.carts.delete(other.id)
    with pytest.raises(NotFoundError):
        tollgate.carts.retrieve(other.id)


def test_one_item_checkout(tollgate, catalog):
    session = tollgate.checkout.item(
        customer="user-1",
        price="credits-1000",
        quantity=2,
        success_url=OK,
        cancel_url=CANCEL,
        metadata={"o": "1"},
    )
    assert (session.mode, session.amount_total, session.currency) == ("payment", 3000, "usd")


def test_intent_flow_then_a_partial_refund(tollgate, catalog, stripe_sdk, stripe_webhooks):
    payment = tollgate.payments.create(
        customer="user-1", price="credits-1000", flow="intent", reference="order-1"
    )
    assert isinstance(payment, Payment)
    assert (payment.flow, payment.status, payment.checkout_url) == ("intent", "pending", None)
    assert payment.client_secret
    assert payment.publishable_key
    stripe_sdk().v1.payment_intents.confirm(
        payment.stripe_payment_intent_id, {"payment_method": "pm_card_visa"}
    )
    stripe_webhooks.deliver()

    refunded = tollgate.payments.refund(payment.id, amount=500, reason="requested_by_customer")
    assert refunded.amount_refunded == 500
    (found,) = tollgate.payments.list(reference="order-1").data
    assert found.id == payment.id
    assert [i.price_key for i in found.items] == ["credits-1000"]


def test_an_amount_payment_and_its_cancel(tollgate, catalog):
    payment = tollgate.payments.create(
        customer="user-1",
        amount=2500,
        currency="usd",
        description="Consulting",
        success_url=OK,
        cancel_url=CANCEL,
    )
    assert (payment.amount, payment.description, payment.flow) == (2500, "Consulting", "checkout")
    assert payment.checkout_url
    assert tollgate.payments.cancel(payment.id).status in {"canceled", "expired"}
    assert PaymentRow.objects.get(pk=payment.id).status in {"canceled", "expired"}


def test_endpoints_secret_roll_and_redelivery(tollgate, receiver, catalog):
    endpoint = tollgate.webhook_endpoints.create(
        url=receiver.url, events=["payment.succeeded"], description="shop"
    )
    assert tollgate.webhook_endpoints.retrieve(endpoint.id).secret is None  # shown once
    assert [e.id for e in tollgate.webhook_endpoints.list().data] == [endpoint.id]
    updated = tollgate.webhook_endpoints.update(endpoint.id, events=["*"], description="all")
    assert (updated.events, updated.description) == (["*"], "all")

    rolled = tollgate.webhook_endpoints.roll_secret(endpoint.id, overlap_seconds=3600)
    assert rolled.secret
    assert rolled.secret != endpoint.secret
    pending = tollgate.payments.create(customer="user-1", price="sticker", success_url=OK, cancel_url=CANCEL)
    tollgate.payments.cancel(pending.id)
    assert receiver.received
    for delivery in receiver.received:  # signed with both secrets during the overlap
        header = delivery.headers["Tollgate-Signature"]
        assert construct_event(delivery.body, header, endpoint.secret).id
        assert construct_event(delivery.body, header, rolled.secret).id

    event = tollgate.events.list(limit=1).data[0]
    count = len(receiver.received)
    redelivered = tollgate.events.redeliver(event.id)
    assert redelivered.id == event.id
    assert len(receiver.received) == count + 1

    tollgate.webhook_endpoints.delete(endpoint.id)
    with pytest.raises(NotFoundError):
        tollgate.webhook_endpoints.retrieve(endpoint.id)


def test_own_project_and_key_rotation(tollgate, live_server, tenant_a):
    project = tollgate.project.retrieve()
    assert (project.id, project.slug, project.allowed_redirect_hosts) == (
        tenant_a.project.pk,
        "alpha",
        ["app.example.com"],
    )
    assert "stripe_secret_key" not in project.raw
    new = tollgate.project.api_keys.create(name="deploy 2")
    assert new.api_key
    with Tollgate(new.api_key, live_server.url) as rotated:
        assert rotated.project.retrieve().id == project.id
        assert new.id in {k.id for k in rotated.project.api_keys.list().auto_paging_iter()}
        rotated.project.api_keys.revoke(tenant_a.api_key.pk)
    with pytest.raises(AuthenticationError):
        tollgate.project.retrieve()


def test_catalog_lists_and_updates(tollgate, catalog):
    assert {p.key for p in tollgate.products.list(active=True).auto_paging_iter()} == {"pro", "credits"}
    assert {p.key for p in tollgate.prices.list(product="credits", type="one_time").auto_paging_iter()} == {
        "credits-1000",
        "sticker",
        "credits-gbp",
    }
    feature = tollgate.features.create(key="seats", name="Seats", type="allocation")
    assert tollgate.features.update(feature.key, name="Team seats").name == "Team seats"
    assert [f.key for f in tollgate.features.list(type="allocation").data] == ["seats"]
    product = tollgate.products.update("pro", features={"seats": {"per_unit": 1}}, description="For teams")
    assert (product.features, product.description) == ({"seats": {"per_unit": 1}}, "For teams")
    price = tollgate.prices.update("sticker", unit_amount=250)
    assert (price.unit_amount, price.key) == (250, "sticker")
    assert tollgate.prices.update("sticker", active=False).active is False


def test_metrics(tollgate):
    assert tollgate.metrics.subscriptions().total == 0
    revenue = tollgate.metrics.revenue(interval="month")
    assert (revenue.interval, revenue.data) == ("month", [])


def test_revenue_recognition(tollgate, catalog, stripe_sdk, stripe_webhooks):
    """Two credit packs paid (30.00 for 2,000 prepaid tokens), 500 tokens spent and 5.00 refunded, and an amount
    paid as such (no product, earned at once): this month's figures per currency and product, typed, and the
    month before, empty."""
    empty = tollgate.metrics.revenue_recognition()
    month = datetime.now(UTC).date().replace(day=1)
    assert empty == RevenueRecognition(
        months=[RevenueRecognitionMonth(month=f"{month:%Y-%m}", currencies=[])]
    )
    tollgate.features.create(key="tokens", name="Tokens", type="credits")
    tollgate.products.update("credits", features={"tokens": 1000})

    def paid(**params: Any) -> Payment:
        payment = tollgate.payments.create(customer="user-1", flow="intent", **params)
        stripe_sdk().v1.payment_intents.confirm(
            payment.stripe_payment_intent_id, {"payment_method": "pm_card_visa"}
        )
        stripe_webhooks.deliver()
        return payment

    packs = paid(price="credits-1000", quantity=2)
    paid(amount=2500, currency="usd", description="Consulting")
    assert tollgate.entitlements.consume(id="c1", customer="user-1", feature="tokens", quantity=500).allowed
    assert tollgate.payments.refund(packs.id, amount=500).amount_refunded == 500
    stripe_webhooks.deliver()

    report = tollgate.metrics.revenue_recognition(month=f"{month:%Y-%m}", months=2)

    # The amount is earned the day it was paid: nothing of it is left deferred. The packs' money is a liability
    # until their tokens are spent: a quarter of them (500 of 2,000) earns a quarter of the 30.00 (7.50); the
    # refund takes 5.00 off the liability left (22.50 → 17.50) and gives back no revenue.
    previous = (month - timedelta(days=1)).replace(day=1)
    nothing = RevenueRecognitionBalance(opening=0, added=0, recognised=0, closing=0)
    assert isinstance(report, RevenueRecognition)
    assert report == RevenueRecognition(
        object="revenue_recognition",
        months=[
            RevenueRecognitionMonth(month=f"{previous:%Y-%m}", currencies=[]),
            RevenueRecognitionMonth(
                month=f"{month:%Y-%m}",
                currencies=[
                    RevenueRecognitionCurrency(
                        currency="usd",
                        billed=5500,
                        refunds=500,
                        recognised=3250,
                        deferred=RevenueRecognitionBalance(opening=0, added=2500, recognised=2500, closing=0),
                        credits=RevenueRecognitionBalance(
                            opening=0, added=2500, recognised=750, closing=1750
                        ),
                        products=[
                            RevenueRecognitionProduct(
                                product=None,
                                name="",
                                billed=2500,
                                refunds=0,
                                recognised=2500,
                                deferred=RevenueRecognitionBalance(
                                    opening=0, added=2500, recognised=2500, closing=0
                                ),
                                credits=nothing,
                            ),
                            RevenueRecognitionProduct(
                                product=catalog.credits.pk,
                                name="Credit pack",
                                billed=3000,
                                refunds=500,
                                recognised=750,
                                deferred=nothing,
                                credits=RevenueRecognitionBalance(
                                    opening=0, added=2500, recognised=750, closing=1750
                                ),
                            ),
                        ],
                    )
                ],
            ),
        ],
    )
    assert report.raw["months"][1]["currencies"][0]["products"][1] == {
        "product": catalog.credits.pk,
        "name": "Credit pack",
        "billed": 3000,
        "refunds": 500,
        "recognised": 750,
        "deferred": {"opening": 0, "added": 0, "recognised": 0, "closing": 0},
        "credits": {"opening": 0, "added": 2500, "recognised": 750, "closing": 1750},
    }
    with pytest.raises(InvalidRequestError) as refused:
        tollgate.metrics.revenue_recognition(month="2026-13")
    assert refused.value.param == "month"
    with pytest.raises(InvalidRequestError) as refused:
        tollgate.metrics.revenue_recognition(months=25)
    assert refused.value.param == "months"


def test_the_platform_namespace(live_server, platform_key):
    with Tollgate(platform_key, live_server.url) as platform:
        created = platform.projects.create(
            slug="charlie", name="Charlie", allowed_redirect_hosts=["shop.example.com"]
        )
        assert created.api_key
        assert platform.projects.retrieve("charlie").id == created.id
        assert platform.projects.update("charlie", name="Charlie & Co").name == "Charlie & Co"
        assert "charlie" in {p.slug for p in platform.projects.list().auto_paging_iter()}
        key = platform.projects.api_keys.create(created.id, name="ci")
        assert key.api_key
        assert key.id in {k.id for k in platform.projects.api_keys.list(created.id).data}
        platform.projects.api_keys.revoke(created.id, key.id)
    with Tollgate(created.api_key, live_server.url) as tenant:
        assert tenant.project.retrieve().slug == "charlie"


def test_ids_are_quoted_whole(tollgate):
    tollgate.customers.create(external_id="ada+billing@example.com")
    assert tollgate.customers.retrieve("ada+billing@example.com").external_id == "ada+billing@example.com"
    with pytest.raises(NotFoundError):
        tollgate.customers.retrieve("../project")


def test_the_escape_hatch_for_what_has_no_method_yet(tollgate):
    tollgate.customers.create(external_id="user-1")
    answer = tollgate.request("GET", "/customers", params={"limit": 1})
    assert answer["object"] == "list"
    assert answer["data"][0]["external_id"] == "user-1"
