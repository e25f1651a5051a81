"""The generic cross-tenant sweep: every tenant route that names an object answers 404 to another project.

It discovers routes from the URL resolver, so a new endpoint joins the sweep without editing this file. A
tenant view declares `tenant_lookup = {"<url kwarg>": Model}`; the sweep creates each object for project A
with the model's factory (from any `tests/**/*factories.py`, called with `project=`), calls every method of the
route with project B's key, and asserts 404 `not_found` and that no row in any table changed. Objects adopted from
the platform's shared Stripe account are swept the same way, both ways, and nothing changes at Stripe either.
"""

import importlib
import pkgutil
from datetime import UTC, datetime
from typing import Any

import factory
import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

import tests
from billing.models import Coupon, Invoice, Payment, PromotionCode, Subscription
from billing.services.adoption import adoption_execute, adoption_start
from catalog.models import Feature, Price, Product
from catalog.services.features import feature_create
from config.settings.base import TOLLGATE_APPS
from core.actors import Actor
from core.base_api import BaseApi
from customers.models import Customer, TestClock
from customers.services.customers import customer_ensure_stripe
from customers.services.test_clocks import clock_create
from projects.permissions import IsPlatformKey


def _walk(patterns: list[Any], prefix: str = "") -> list[tuple[str, URLPattern]]:
    found: list[tuple[str, URLPattern]] = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            found.extend(_walk(entry.url_patterns, prefix + str(entry.pattern)))
        elif isinstance(entry, URLPattern):
            found.append((prefix + str(entry.pattern), entry))
    return found


def tenant_routes() -> list[tuple[str, type[BaseApi]]]:
    routes: dict[str, type[BaseApi]] = {}
    for route, pattern in _walk(get_resolver().url_patterns):
        view_class = getattr(pattern.callback, "view_class", None)
        if not route.startswith("api/v1/") or "<" not in route or view_class is None:
            continue
        if not issubclass(view_class, BaseApi) or IsPlatformKey in view_class.permission_classes:
            continue
        if not view_class.authentication_classes:  # public by design (the plans page): no tenant to cross
            continue
        routes.setdefault(route.rstrip("/"), view_class)
    return sorted(routes.items())


def _factories() -> dict[type, type[factory.django.DjangoModelFactory]]:
    registry: dict[type, type[factory.django.DjangoModelFactory]] = {}
    for module_info in pkgutil.walk_packages(tests.__path__, "tests."):
        if module_info.name.rsplit(".", 1)[-1].endswith("factories"):
            module = importlib.import_module(module_info.name)
            for value in vars(module).values():
                if (
                    isinstance(value, type)
                    and issubclass(value, factory.django.DjangoModelFactory)
                    and value._meta.model is not None
                    and not value._meta.abstract
                ):
                    registry.setdefault(value._meta.model, value)
    return registry


def _snapshot() -> dict[str, list[dict[str, Any]]]:
    return {
        model._meta.label: sorted(model.objects.values(), key=lambda row: str(row.get("id", row)))
        for model in apps.get_models()
        if model._meta.app_label in TOLLGATE_APPS
    }


ROUTES = tenant_routes()


def test_the_sweep_finds_routes():
    assert ROUTES, "no tenant route with an object id was discovered"


@pytest.mark.parametrize(("route", "view_class"), ROUTES, ids=[route for route, _ in ROUTES])
def test_another_projects_key_gets_404_and_changes_nothing(api, tenant_a, tenant_b, route, view_class):
    kwargs = set(pattern_kwargs(route))
    missing = kwargs - set(view_class.tenant_lookup)
    assert not missing, f"{view_class.__name__} must declare tenant_lookup for {sorted(missing)}"
    factories = _factories()
    path = "/" + route
    for kwarg, model in view_class.tenant_lookup.items():
        if model is None:  # a part of the object before it (an invoice's line): any id; the object is A's
            path = path.replace(f"<str:{kwarg}>", "il_any")
            continue
        assert model in factories, f"no factory for {model.__name__} in tests/*/factories.py"
        obj = factories[model](project=tenant_a.project)
        path = path.replace(f"<str:{kwarg}>", str(obj.pk)).replace(f"<{kwarg}>", str(obj.pk))

    api.get("/api/v1/project", key=tenant_b.key)  # B's key is warm: its last_used_at is not written again
    before = _snapshot()
    methods = [
        m for m in view_class.http_method_names if m not in {"options", "head"} and hasattr(view_class, m)
    ]
    for method in methods:
        response = api.request(method.upper(), path, key=tenant_b.key, json_body={})
        assert response.status_code == 404, (
            f"{method.upper()} {path} with another project's key: {response.status_code}"
        )
        assert response.json()["error"]["type"] == "not_found"
    assert _snapshot() == before
    if "get" in methods:
        assert api.get(path, key=tenant_a.key).status_code == 200


def pattern_kwargs(route: str) -> list[str]:
    import re

    return [name for _, name in re.findall(r"<(?:(\w+):)?(\w+)>", route)]


# --- adopted objects -------------------------------------------------------------------------------------------

ADOPTABLE = (
    Customer,
    TestClock,
    Feature,
    Product,
    Price,
    Coupon,
    PromotionCode,
    Subscription,
    Invoice,
    Payment,
)


def _stripe_state(sdk: Any) -> dict[str, list[dict[str, Any]]]:
    """Everything on the platform account a tenant write could reach, as Stripe holds it."""
    lists = {
        "coupons": sdk.v1.coupons,
        "promotion_codes": sdk.v1.promotion_codes,
        "products": sdk.v1.products,
        "prices": sdk.v1.prices,
        "customers": sdk.v1.customers,
        "subscriptions": sdk.v1.subscriptions,
        "invoices": sdk.v1.invoices,
        "test_clocks": sdk.v1.test_helpers.test_clocks,
    }
    params = {"subscriptions": {"limit": 100, "status": "all"}}
    return {
        name: [obj.to_dict() for obj in endpoint.list(params.get(name, {"limit": 100})).data]
        for name, endpoint in lists.items()
    }


def test_objects_adopted_from_the_platform_account_are_404_to_the_other_project(
    api, tenant_a, tenant_b, catalog_b, stripe_sdk
):
    """Project A adopts the platform's account, which holds project B's objects (made through Tollgate) and
    objects no project owns yet: A gets only the latter, and each project's key gets 404 for every route of the
    other's adopted or own objects, with nothing changed here or at Stripe."""
    sdk = stripe_sdk()
    actor = Actor.system("test")
    assert (
        api.post(
            "/api/v1/coupons", {"key": "launch", "duration": "once", "percent_off": "25"}, key=tenant_b.key
        ).status_code
        == 201
    )
    assert (
        api.post(
            "/api/v1/promotion_codes", {"code": "LAUNCH25", "coupon": "launch"}, key=tenant_b.key
        ).status_code
        == 201
    )
    theirs = Customer.objects.create(project=tenant_b.project, external_id="b-1", email="b@example.com")
    customer_ensure_stripe(customer=theirs)
    theirs.refresh_from_db()
    feature_create(project=tenant_b.project, actor=actor, key="calls", name="Calls", type="boolean")
    clock_create(project=tenant_b.project, actor=actor, frozen_time=datetime(2026, 1, 1, tzinfo=UTC))
    sdk.v1.subscriptions.create(
        {
            "customer": theirs.stripe_customer_id,
            "items": [{"price": catalog_b.pro_monthly.stripe_price_id}],
            "default_payment_method": "pm_card_visa",
            "metadata": {"tollgate_project": tenant_b.project.pk},
        }
    )
    # What no project owns yet: a product and its price, a coupon and its code, a customer on a test clock
    # with a paid subscription.
    product = sdk.v1.products.create({"name": "Solo"}).id
    price = sdk.v1.prices.create(
        {"product": product, "currency": "usd", "unit_amount": 900, "recurring": {"interval": "month"}}
    ).id
    coupon = sdk.v1.coupons.create({"percent_off": 10, "duration": "once"}).id
    sdk.v1.promotion_codes.create({"promotion": {"type": "coupon", "coupon": coupon}, "code": "SOLO10"})
    clock = sdk.v1.test_helpers.test_clocks.create({"frozen_time": int(datetime.now(UTC).timestamp())})
    customer = sdk.v1.customers.create({"email": "a@example.com", "test_clock": clock.id}).id
    sdk.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": price}], "default_payment_method": "pm_card_visa"}
    )
    mapping = {
        "features": [{"key": "solo", "name": "Solo", "type": "boolean"}],
        "products": [
            {"stripe_product": product, "key": "solo", "features": {"solo": True}},
            {"stripe_product": catalog_b.pro.stripe_product_id, "key": "pro", "features": {}},
        ],
    }
    run = adoption_start(
        project=tenant_a.project, actor=actor, customer_key={"field": "email"}, mapping=mapping, queue=False
    )
    run = adoption_execute(run_id=run.pk)
    assert (run.status, run.error) == ("completed", "")

    adopted = {model: model.objects.filter(project=tenant_a.project).first() for model in ADOPTABLE}
    own = {model: model.objects.filter(project=tenant_b.project).first() for model in ADOPTABLE}
    assert [m.__name__ for m, row in adopted.items() if row is None] == []
    assert Coupon.objects.get(project=tenant_a.project).stripe_coupon_id == coupon
    assert Product.objects.get(project=tenant_a.project).stripe_product_id == product

    api.get("/api/v1/project", key=tenant_a.key)  # both keys warm: their last_used_at is not written again
    api.get("/api/v1/project", key=tenant_b.key)
    swept = 0
    for route, view_class in ROUTES:
        (kwarg, model), *more = view_class.tenant_lookup.items()
        if more or model not in ADOPTABLE:
            continue
        methods = [
            m for m in view_class.http_method_names if m not in {"options", "head"} and hasattr(view_class, m)
        ]
        for rows, owner, other in ((adopted, tenant_a, tenant_b), (own, tenant_b, tenant_a)):
            if rows[model] is None:  # B's subscriptions, invoices and payments are not mirrored here
                continue
            path = "/" + route.replace(f"<str:{kwarg}>", str(rows[model].pk)).replace(
                f"<{kwarg}>", str(rows[model].pk)
            )
            before, at_stripe = _snapshot(), _stripe_state(sdk)
            for method in methods:
                response = api.request(method.upper(), path, key=other.key, json_body={})
                assert (response.status_code, response.json()["error"]["type"]) == (404, "not_found"), (
                    f"{method.upper()} {path} with another project's key: {response.status_code}"
                )
            assert _snapshot() == before, path
            assert _stripe_state(sdk) == at_stripe, path
            if "get" in methods:
                assert api.get(path, key=owner.key).status_code == 200, path
            swept += 1
    assert swept >= 12 + 9
