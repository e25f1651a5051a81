"""Adopting the platform's shared Stripe account takes only what no other project owns: every kind of object
(test clocks, products, prices, meters, coupons, promotion codes, customers, subscriptions, invoices) another
project owns — named in its `metadata.tollgate_project`, held by that project's rows, or belonging to something
that is — is skipped and reported, on a dry run and a real run alike; and the adopting project's key can then
neither change nor remove the other project's coupon and promotion code at Stripe (404, nothing changed)."""

from datetime import UTC, datetime
from typing import Any

import pytest

from billing.models import (
    AdoptionRun,
    CheckoutSession,
    Coupon,
    Invoice,
    Payment,
    PromotionCode,
    Subscription,
)
from billing.services.adoption import adoption_execute, adoption_start
from catalog.models import Feature, Price, Product
from catalog.services.features import feature_create
from catalog.services.stripe_sync import feature_meter_ensure
from core.actors import Actor
from customers.models import Customer, TestClock
from customers.services.customers import customer_ensure_stripe
from customers.services.test_clocks import clock_create
from tests.billing.factories import CouponFactory, PriceFactory, ProductFactory, PromotionCodeFactory
from tests.customers.factories import ClockFactory

MONTH = {"interval": "month"}


def _adopt(project: Any, mapping: Any, *, dry_run: bool = False) -> AdoptionRun:
    run = adoption_start(
        project=project,
        actor=Actor.system("test"),
        customer_key={"field": "email"},
        mapping=mapping,
        dry_run=dry_run,
        queue=False,
    )
    return adoption_execute(run_id=run.pk)


@pytest.fixture
def theirs(api, tenant_b, catalog_b, stripe_sdk) -> dict[str, Any]:
    """Project B's objects on the platform account, made through Tollgate (so marked as B's at Stripe)."""
    sdk = stripe_sdk()
    project = tenant_b.project
    assert (
        api.post(
            "/api/v1/coupons", {"key": "launch", "duration": "once", "percent_off": "25"}, key=tenant_b.key
        ).status_code
        == 201
    )
    code = api.post("/api/v1/promotion_codes", {"code": "LAUNCH25", "coupon": "launch"}, key=tenant_b.key)
    assert code.status_code == 201, code.json()
    customer = Customer.objects.create(project=project, external_id="b-1", email="b@example.com")
    customer_ensure_stripe(customer=customer)
    customer.refresh_from_db()
    subscription = sdk.v1.subscriptions.create(
        {
            "customer": customer.stripe_customer_id,
            "items": [{"price": catalog_b.pro_monthly.stripe_price_id}],
            "default_payment_method": "pm_card_visa",
            "metadata": {"tollgate_project": project.pk},
        }
    )
    clock = clock_create(
        project=project, actor=Actor.system("test"), frozen_time=datetime(2026, 1, 1, tzinfo=UTC)
    )
    on_clock = sdk.v1.customers.create(
        {"email": "clocked@example.com", "test_clock": clock.stripe_test_clock_id}
    )
    feature = feature_create(
        project=project, actor=Actor.system("test"), key="calls", name="Calls", type="metered"
    )
    feature = feature_meter_ensure(feature=feature)
    return {
        "coupon": Coupon.objects.get(project=project).stripe_coupon_id,
        "promotion_code": PromotionCode.objects.get(project=project).stripe_promotion_code_id,
        "customers": [customer.stripe_customer_id, on_clock.id],
        "subscription": subscription.id,
        "invoices": [i.id for i in sdk.v1.invoices.list({"customer": customer.stripe_customer_id}).data],
        "clock": clock.stripe_test_clock_id,
        "meter": feature.stripe_meter_id,
        "products": [catalog_b.pro.stripe_product_id, catalog_b.credits.stripe_product_id],
        "prices": sorted(Price.objects.filter(project=project).values_list("stripe_price_id", flat=True)),
    }


@pytest.fixture
def mine(stripe_sdk, theirs) -> dict[str, Any]:
    """What no project owns yet on the platform account: a customer, a coupon, and a product whose metered
    price bills project B's meter."""
    sdk = stripe_sdk()
    product = sdk.v1.products.create({"name": "Metered"}).id
    price = sdk.v1.prices.create(
        {
            "product": product,
            "currency": "usd",
            "recurring": {**MONTH, "usage_type": "metered", "meter": theirs["meter"]},
            "unit_amount": 2,
        }
    ).id
    return {
        "customer": sdk.v1.customers.create({"email": "a@example.com"}).id,
        "coupon": sdk.v1.coupons.create({"percent_off": 10, "duration": "once"}).id,
        "product": product,
        "price": price,
    }


def _mapping(theirs: dict[str, Any], mine: dict[str, Any]) -> dict[str, Any]:
    return {
        "features": [{"key": "api_calls", "name": "API calls", "type": "metered"}],
        "products": [
            {"stripe_product": theirs["products"][0], "key": "pro", "features": {}},
            {"stripe_product": mine["product"], "key": "metered", "features": {}},
        ],
        "meters": {theirs["meter"]: "api_calls"},
    }


def _skipped(theirs: dict[str, Any]) -> list[dict[str, str]]:
    """Every object of project B the run met, listed once, in the order the run reads them."""
    return [
        *({"kind": "products", "id": p} for p in theirs["products"]),
        *({"kind": "prices", "id": p} for p in theirs["prices"]),
        {"kind": "meters", "id": theirs["meter"]},
        {"kind": "coupons", "id": theirs["coupon"]},
        {"kind": "promotion_codes", "id": theirs["promotion_code"]},
    ]


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry_run", "run"])
def test_what_another_project_owns_is_skipped_and_reported(tenant_a, theirs, mine, dry_run):
    project = tenant_a.project
    run = _adopt(project, _mapping(theirs, mine), dry_run=dry_run)

    assert (run.status, run.error) == ("completed", "")
    counts = run.report["counts"]
    held = {kind: c.get("held_by_another_project", 0) for kind, c in counts.items()}
    assert {kind: n for kind, n in held.items() if n} == {
        "products": 2,
        "prices": len(theirs["prices"]),
        "meters": 1,
        "coupons": 1,
        "promotion_codes": 1,
        "test_clocks": 1,
        "customers": 2,
        "subscriptions": 1,
        "invoices": len(theirs["invoices"]),
    }
    listed = run.report["held_by_another_project"]
    expected = [
        *_skipped(theirs),
        {"kind": "test_clocks", "id": theirs["clock"]},
        *({"kind": "customers", "id": c} for c in theirs["customers"]),
        {"kind": "subscriptions", "id": theirs["subscription"]},
        *({"kind": "invoices", "id": i} for i in theirs["invoices"]),
    ]
    assert sorted(listed, key=str) == sorted(expected, key=str)
    # What no project owns is adopted as before: the customer, the coupon, the product (its price, on B's
    # meter, skipped with the reason).
    assert counts["customers"] == {"created": 1, "held_by_another_project": 2}
    assert counts["coupons"] == {"created": 1, "held_by_another_project": 1}
    assert counts["products"] == {"created": 1, "held_by_another_project": 2}
    assert counts["prices"] == {"held_by_another_project": len(theirs["prices"]), "skipped": 1}
    assert run.report["skipped_prices"] == [
        {
            "id": mine["price"],
            "reason": f"billing meter {theirs['meter']} is another project's: its usage is not this "
            "project's to report",
        }
    ]
    assert counts["promotion_codes"] == {"held_by_another_project": 1}

    # Project A holds none of B's objects, and B's rows are as they were.
    a_rows = {
        "customers": set(
            Customer.objects.filter(project=project).values_list("stripe_customer_id", flat=True)
        ),
        "coupons": set(Coupon.objects.filter(project=project).values_list("stripe_coupon_id", flat=True)),
        "products": set(Product.objects.filter(project=project).values_list("stripe_product_id", flat=True)),
    }
    if dry_run:
        assert a_rows == {"customers": set(), "coupons": set(), "products": set()}
    else:
        assert a_rows == {
            "customers": {mine["customer"]},
            "coupons": {mine["coupon"]},
            "products": {mine["product"]},
        }
    for model in (PromotionCode, Price, Subscription, Invoice, TestClock):
        assert not model.objects.filter(project=project).exists(), model.__name__
    assert not Feature.objects.filter(project=project, stripe_meter_id=theirs["meter"]).exists()


def test_the_adopting_project_cannot_switch_off_or_delete_the_other_projects_code_and_coupon(
    api, tenant_a, tenant_b, theirs, mine, stripe_sdk
):
    run = _adopt(tenant_a.project, {})  # coupons and promotion codes are adopted whatever the mapping
    assert run.status == "completed"
    sdk = stripe_sdk()
    promo_id, coupon_id = theirs["promotion_code"], theirs["coupon"]

    # Nothing of B's is A's to read, change or remove: A lists no code, and by id or key it is missing.
    assert api.get("/api/v1/promotion_codes", key=tenant_a.key).json()["data"] == []
    listed = [c["stripe_coupon_id"] for c in api.get("/api/v1/coupons", key=tenant_a.key).json()["data"]]
    assert listed == [mine["coupon"]]
    ours = PromotionCode.objects.get(project=tenant_b.project)
    for path in (f"/api/v1/promotion_codes/{promo_id}", f"/api/v1/promotion_codes/{ours.pk}"):
        response = api.patch(path, {"active": False}, key=tenant_a.key)
        assert (response.status_code, response.json()["error"]["type"]) == (404, "not_found"), path
    for ref in (coupon_id, "launch"):
        response = api.delete(f"/api/v1/coupons/{ref}", key=tenant_a.key)
        assert (response.status_code, response.json()["error"]["type"]) == (404, "not_found"), ref
    created = api.post("/api/v1/promotion_codes", {"code": "MINE", "coupon": coupon_id}, key=tenant_a.key)
    assert (created.status_code, created.json()["error"]["type"]) == (404, "not_found")

    # At Stripe, B's coupon and code are untouched, and no code was made on B's coupon.
    stripe_coupon = sdk.v1.coupons.retrieve(coupon_id)
    assert (stripe_coupon.valid, stripe_coupon.percent_off, stripe_coupon.metadata["tollgate_project"]) == (
        True,
        25,
        tenant_b.project.pk,
    )
    stripe_promo = sdk.v1.promotion_codes.retrieve(promo_id)
    assert (stripe_promo.active, stripe_promo.code) == (True, "LAUNCH25")
    assert [p.id for p in sdk.v1.promotion_codes.list({"limit": 100}).data] == [promo_id]
    # B still sees its code active, and can still make codes on its coupon.
    b_codes = api.get("/api/v1/promotion_codes", key=tenant_b.key).json()["data"]
    assert [(c["code"], c["active"]) for c in b_codes] == [("LAUNCH25", True)]
    more = api.post("/api/v1/promotion_codes", {"code": "LAUNCH30", "coupon": "launch"}, key=tenant_b.key)
    assert more.status_code == 201, more.json()


def test_copies_an_earlier_adoption_made_reach_nothing_at_stripe(
    api, tenant_a, tenant_b, catalog, catalog_b, theirs, stripe_sdk
):
    """Rows an adoption made of another project's objects before adoption respected ownership: the project's
    writes through them are refused as for anything it does not own, and nothing changes at Stripe."""
    project = tenant_a.project
    coupon = CouponFactory(project=project, key=theirs["coupon"], stripe_coupon_id=theirs["coupon"])
    promo = PromotionCodeFactory(
        project=project, coupon=coupon, code="LAUNCH25", stripe_promotion_code_id=theirs["promotion_code"]
    )
    product = ProductFactory(
        project=project, key="pro-copy", stripe_product_id=catalog_b.pro.stripe_product_id
    )
    PriceFactory(
        project=project,
        product=product,
        key="pro-copy-monthly",
        type=Price.Type.RECURRING,
        interval="month",
        unit_amount=3000,
        stripe_price_id=catalog_b.pro_monthly.stripe_price_id,
    )
    sdk = stripe_sdk()
    stripe_prices = len(sdk.v1.prices.list({"limit": 100}).data)
    rows = _rows_of(project)

    refused = {
        "PATCH promotion code": api.patch(
            f"/api/v1/promotion_codes/{promo.pk}", {"active": False}, key=tenant_a.key
        ),
        "DELETE coupon": api.delete(f"/api/v1/coupons/{coupon.key}", key=tenant_a.key),
        "POST promotion code": api.post(
            "/api/v1/promotion_codes", {"code": "MINE", "coupon": coupon.key}, key=tenant_a.key
        ),
        "PATCH product": api.patch("/api/v1/products/pro-copy", {"name": "Taken"}, key=tenant_a.key),
        "PATCH price": api.patch("/api/v1/prices/pro-copy-monthly", {"active": False}, key=tenant_a.key),
        "POST price": api.post(
            "/api/v1/prices",
            {"key": "more", "product": "pro-copy", "currency": "usd", "unit_amount": 100, "type": "one_time"},
            key=tenant_a.key,
        ),
    }
    assert {name: (r.status_code, r.json()["error"]["type"]) for name, r in refused.items()} == dict.fromkeys(
        refused, (404, "not_found")
    )
    redeemed = api.post(
        "/api/v1/checkout/subscription",
        {
            "customer": "user-1",
            "price": "pro-monthly",
            "promotion_code": "LAUNCH25",
            "success_url": "https://app.example.com/ok",
            "cancel_url": "https://app.example.com/cancel",
        },
        key=tenant_a.key,
    )
    assert (redeemed.status_code, redeemed.json()["error"]["code"]) == (400, "promotion_code_invalid")
    assert "no such code" in redeemed.json()["error"]["message"]

    assert _rows_of(project) == rows
    stripe_coupon = sdk.v1.coupons.retrieve(theirs["coupon"])
    assert (stripe_coupon.valid, stripe_coupon.metadata["tollgate_project"]) == (True, tenant_b.project.pk)
    stripe_promo = sdk.v1.promotion_codes.retrieve(theirs["promotion_code"])
    assert (stripe_promo.active, stripe_promo.times_redeemed) == (True, 0)
    assert [p.code for p in sdk.v1.promotion_codes.list({"limit": 100}).data] == ["LAUNCH25"]
    stripe_product = sdk.v1.products.retrieve(catalog_b.pro.stripe_product_id)
    assert (stripe_product.name, stripe_product.active) == (catalog_b.pro.name, True)
    assert sdk.v1.prices.retrieve(catalog_b.pro_monthly.stripe_price_id).active is True
    assert len(sdk.v1.prices.list({"limit": 100}).data) == stripe_prices
    # Project B's own writes go on as before.
    off = api.patch(
        f"/api/v1/promotion_codes/{PromotionCode.objects.get(project=tenant_b.project).pk}",
        {"active": False},
        key=tenant_b.key,
    )
    assert (off.status_code, off.json()["active"]) == (200, False)
    assert sdk.v1.promotion_codes.retrieve(theirs["promotion_code"]).active is False


def _rows_of(project: Any) -> dict[str, list[dict[str, Any]]]:
    return {
        model.__name__: list(model.objects.filter(project=project).order_by("pk").values())
        for model in (Coupon, PromotionCode, Product, Price, Payment, CheckoutSession)
    }


def test_a_copied_test_clock_of_another_project_is_neither_advanced_nor_deleted(
    api, tenant_a, tenant_b, theirs, stripe_sdk
):
    """A clock row an earlier adoption copied from another project's clock (one of its customers adopted):
    advancing or deleting it would move or delete that project's customers at Stripe. 404, nothing changed."""
    sdk = stripe_sdk()
    copy = ClockFactory(
        project=tenant_a.project,
        stripe_test_clock_id=theirs["clock"],
        frozen_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    at_stripe = sdk.v1.test_helpers.test_clocks.retrieve(theirs["clock"]).to_dict()
    rows = list(TestClock.objects.order_by("pk").values())

    advance = api.post(
        f"/api/v1/test_clocks/{copy.pk}/advance", {"frozen_time": "2026-03-01T00:00:00Z"}, key=tenant_a.key
    )
    delete = api.delete(f"/api/v1/test_clocks/{copy.pk}", key=tenant_a.key)

    assert (advance.status_code, advance.json()["error"]["type"]) == (404, "not_found")
    assert (delete.status_code, delete.json()["error"]["type"]) == (404, "not_found")
    assert sdk.v1.test_helpers.test_clocks.retrieve(theirs["clock"]).to_dict() == at_stripe
    assert "deleted" not in sdk.v1.customers.retrieve(theirs["customers"][1]).to_dict()
    assert list(TestClock.objects.order_by("pk").values()) == rows
