"""Prices: the Stripe price behind each (namespaced lookup key, metadata, recurrence, meter), amount changes that
create a new Stripe price, archiving, replayed requests, Stripe failures, bad input and other projects."""

import pytest
import stripe

from catalog.models import Feature, Price, Product
from core.models import AuditLogEntry
from projects.models import Project
from stripe_emulator.sdk import EmulatorHTTPClient
from stripe_gateway import client
from tests.billing.factories import PriceFactory, ProductFactory
from tests.entitlements.factories import FeatureFactory
from tests.projects.factories import ProjectFactory

MONTHLY = {
    "key": "pro-monthly",
    "product": "pro",
    "currency": "usd",
    "unit_amount": 3000,
    "type": "recurring",
    "interval": "month",
}


@pytest.fixture
def product(api, tenant_a):
    response = api.post("/api/v1/products", {"key": "pro", "name": "Professional"}, key=tenant_a.key)
    assert response.status_code == 201
    return response.json()


@pytest.fixture
def metered_feature(api, tenant_a):
    body = {"key": "api_calls", "name": "API calls", "type": "metered", "unit": "call"}
    assert api.post("/api/v1/features", body, key=tenant_a.key).status_code == 201


def _create(api, tenant, **body):
    return api.post("/api/v1/prices", {**MONTHLY, **body}, key=tenant.key)


def _stripe_prices(sdk, **params):
    return sdk.v1.prices.list({"limit": 100, **params}).data


class Network(EmulatorHTTPClient):
    """The wire between Tollgate and Stripe — a process boundary we do not own — failing on demand: `down`
    refuses every connection; `lose` lets requests for these paths reach Stripe and then drops the answer."""

    name = "flaky_network"

    def __init__(self, emulator, *, down=False, lose=()):
        super().__init__(emulator)
        self.down = down
        self.lose = set(lose)

    def request(self, method, url, headers, post_data=None, **kwargs):
        if self.down:
            raise stripe.APIConnectionError("connection refused")
        answer = super().request(method, url, headers, post_data, **kwargs)
        if (method.upper(), url.split("://", 1)[-1].split("/", 1)[-1].split("?")[0]) in self.lose:
            raise stripe.APIConnectionError("connection reset by peer")
        return answer


@pytest.fixture
def network(stripe_emulator, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0  # our own retry is what is tested, not the SDK's
    net = Network(stripe_emulator)
    client.install_http_client(net)
    return net


def test_create_recurring_price_creates_the_stripe_price(api, tenant_a, product, stripe_sdk):
    response = _create(api, tenant_a, trial_days=14, tax_behavior="exclusive")

    assert response.status_code == 201, response.content
    body = response.json()
    price = Price.objects.get(project=tenant_a.project, key="pro-monthly")
    assert body == {
        "id": price.pk,
        "object": "price",
        "key": "pro-monthly",
        "product": "pro",
        "currency": "usd",
        "unit_amount": 3000,
        "billing_scheme": "per_unit",
        "tiers_mode": None,
        "tiers": None,
        "type": "recurring",
        "interval": "month",
        "interval_count": 1,
        "trial_days": 14,
        "usage_type": "licensed",
        "meter": None,
        "tax_behavior": "exclusive",
        "active": True,
        "stripe_product_id": product["stripe_product_id"],
        "stripe_price_id": price.stripe_price_id,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    stripe_price = stripe_sdk().v1.prices.retrieve(price.stripe_price_id)
    assert stripe_price.lookup_key == "alpha:pro-monthly"
    assert stripe_price.product == product["stripe_product_id"]
    assert (stripe_price.unit_amount, stripe_price.currency, stripe_price.tax_behavior) == (
        3000,
        "usd",
        "exclusive",
    )
    assert stripe_price.recurring.interval == "month"
    assert stripe_price.recurring.interval_count == 1
    assert stripe_price.recurring.usage_type == "licensed"
    assert stripe_price.metadata.to_dict() == {
        "tollgate_project": tenant_a.project.pk,
        "tollgate_price": price.pk,
    }
    assert AuditLogEntry.objects.get(action="price.created").after["unit_amount"] == 3000


def test_create_one_time_price(api, tenant_a, product, stripe_sdk):
    response = _create(
        api, tenant_a, key="sticker", type="one_time", interval=None, unit_amount=200, currency="EUR"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["type"], body["interval"], body["interval_count"], body["usage_type"], body["currency"]) == (
        "one_time",
        None,
        None,
        None,
        "eur",
    )
    stripe_price = stripe_sdk().v1.prices.retrieve(body["stripe_price_id"])
    assert (stripe_price.type, stripe_price.recurring, stripe_price.unit_amount) == ("one_time", None, 200)


def test_the_stripe_product_is_created_first_when_missing(api, tenant_a, stripe_sdk):
    local_only = ProductFactory(project=tenant_a.project, key="pro")
    response = _create(api, tenant_a)
    assert response.status_code == 201, response.content
    local_only.refresh_from_db()
    assert response.json()["stripe_product_id"] == local_only.stripe_product_id == local_only.pk
    assert stripe_sdk().v1.prices.retrieve(response.json()["stripe_price_id"]).product == local_only.pk


def test_lookup_keys_are_namespaced_per_project(api, tenant_a, tenant_b, stripe_sdk):
    for tenant in (tenant_a, tenant_b):
        assert api.post("/api/v1/products", {"key": "pro", "name": "Pro"}, key=tenant.key).status_code == 201
        assert _create(api, tenant).status_code == 201
    sdk = stripe_sdk()
    assert {p.lookup_key for p in _stripe_prices(sdk)} == {"alpha:pro-monthly", "bravo:pro-monthly"}
    assert [
        p.metadata["tollgate_project"] for p in _stripe_prices(sdk, lookup_keys=["bravo:pro-monthly"])
    ] == [tenant_b.project.pk]


def test_metered_price_gets_the_features_meter_once(api, tenant_a, product, metered_feature, stripe_sdk):
    first = _create(
        api, tenant_a, key="calls-monthly", unit_amount=2, usage_type="metered", meter="api_calls"
    )
    second = _create(
        api,
        tenant_a,
        key="calls-yearly",
        unit_amount=20,
        interval="year",
        usage_type="metered",
        meter="api_calls",
    )

    assert first.status_code == second.status_code == 201, first.content
    assert (first.json()["usage_type"], first.json()["meter"]) == ("metered", "api_calls")
    sdk = stripe_sdk()
    meters = sdk.v1.billing.meters.list().data
    assert [m.event_name for m in meters] == ["tg_alpha_api_calls"]
    feature = Feature.objects.get(key="api_calls")
    assert (feature.stripe_meter_id, feature.stripe_meter_event_name) == (meters[0].id, "tg_alpha_api_calls")
    for response in (first, second):
        stripe_price = sdk.v1.prices.retrieve(response.json()["stripe_price_id"])
        assert stripe_price.recurring.usage_type == "metered"
        assert stripe_price.recurring.meter == meters[0].id
    shown = api.get("/api/v1/features/api_calls", key=tenant_a.key).json()
    assert (shown["stripe_meter_id"], shown["stripe_meter_event_name"]) == (
        meters[0].id,
        "tg_alpha_api_calls",
    )


def test_an_existing_meter_with_the_event_name_is_adopted(
    api, tenant_a, product, metered_feature, stripe_sdk
):
    sdk = stripe_sdk()
    existing = sdk.v1.billing.meters.create(
        {
            "display_name": "API calls",
            "event_name": "tg_alpha_api_calls",
            "default_aggregation": {"formula": "sum"},
        }
    )
    response = _create(api, tenant_a, usage_type="metered", meter="api_calls")
    assert response.status_code == 201, response.content
    assert [m.id for m in sdk.v1.billing.meters.list().data] == [existing.id]
    assert sdk.v1.prices.retrieve(response.json()["stripe_price_id"]).recurring.meter == existing.id


def test_amount_change_creates_a_new_stripe_price_that_takes_the_lookup_key(
    api, tenant_a, product, stripe_sdk
):
    old_id = _create(api, tenant_a).json()["stripe_price_id"]

    response = api.patch("/api/v1/prices/pro-monthly", {"unit_amount": 3500}, key=tenant_a.key)

    assert response.status_code == 200, response.content
    new_id = response.json()["stripe_price_id"]
    assert new_id != old_id
    assert response.json()["unit_amount"] == 3500
    sdk = stripe_sdk()
    old, new = sdk.v1.prices.retrieve(old_id), sdk.v1.prices.retrieve(new_id)
    assert (new.unit_amount, new.lookup_key, new.active) == (3500, "alpha:pro-monthly", True)
    assert (old.unit_amount, old.lookup_key, old.active) == (3000, None, True)  # subscribers keep it
    assert [p.id for p in _stripe_prices(sdk, lookup_keys=["alpha:pro-monthly"])] == [new_id]
    price = Price.objects.get()
    assert (price.stripe_price_id, price.stripe_price_history) == (new_id, [old_id])
    entry = AuditLogEntry.objects.get(action="price.updated")
    assert (entry.before["unit_amount"], entry.after["unit_amount"]) == (3000, 3500)

    # Currency too; the history keeps every Stripe price the price ever had.
    again = api.patch("/api/v1/prices/pro-monthly", {"currency": "eur"}, key=tenant_a.key).json()
    price.refresh_from_db()
    assert price.stripe_price_history == [old_id, new_id]
    assert sdk.v1.prices.retrieve(again["stripe_price_id"]).currency == "eur"
    assert len(_stripe_prices(sdk)) == 3


def test_unchanged_amount_and_other_fields_keep_the_stripe_price(api, tenant_a, product, stripe_sdk):
    created = _create(api, tenant_a).json()
    response = api.patch(
        "/api/v1/prices/pro-monthly",
        {"unit_amount": 3000, "trial_days": 7, "interval": "month", "product": "pro", "type": "recurring"},
        key=tenant_a.key,
    )
    assert response.status_code == 200, response.content
    assert response.json()["stripe_price_id"] == created["stripe_price_id"]
    assert response.json()["trial_days"] == 7
    assert len(_stripe_prices(stripe_sdk())) == 1


def test_deactivation_archives_the_stripe_price(api, tenant_a, product, stripe_sdk):
    created = _create(api, tenant_a).json()
    response = api.patch(f"/api/v1/prices/{created['id']}", {"active": False}, key=tenant_a.key)
    assert response.status_code == 200
    assert response.json()["active"] is False
    assert stripe_sdk().v1.prices.retrieve(created["stripe_price_id"]).active is False
    assert AuditLogEntry.objects.filter(action="price.deactivated").count() == 1

    assert api.patch("/api/v1/prices/pro-monthly", {"active": True}, key=tenant_a.key).status_code == 200
    assert stripe_sdk().v1.prices.retrieve(created["stripe_price_id"]).active is True


def test_list_filters(api, tenant_a, tenant_b, product):
    assert (
        api.post("/api/v1/products", {"key": "packs", "name": "Packs"}, key=tenant_a.key).status_code == 201
    )
    _create(api, tenant_a)
    _create(api, tenant_a, key="pro-yearly", interval="year", unit_amount=30000, active=False)
    _create(api, tenant_a, key="pack", product="packs", type="one_time", interval=None, unit_amount=500)
    PriceFactory(project=tenant_b.project, key="theirs")

    def keys(query=""):
        response = api.get(f"/api/v1/prices{query}", key=tenant_a.key)
        assert response.status_code == 200, response.content
        return [p["key"] for p in response.json()["data"]]

    assert keys() == ["pack", "pro-yearly", "pro-monthly"]
    assert keys("?active=true") == ["pack", "pro-monthly"]
    assert keys("?active=false") == ["pro-yearly"]
    assert keys("?product=pro") == ["pro-yearly", "pro-monthly"]
    assert keys(f"?product={product['id']}&active=true") == ["pro-monthly"]
    assert keys("?type=one_time") == ["pack"]
    assert keys("?limit=1") == ["pack"]
    assert api.get("/api/v1/prices?type=monthly", key=tenant_a.key).json()["error"]["param"] == "type"


def test_idempotency_key_replays_without_a_second_stripe_price(api, tenant_a, product, stripe_sdk):
    headers = {"Idempotency-Key": "price-1"}
    first = api.post("/api/v1/prices", MONTHLY, key=tenant_a.key, headers=headers)
    second = api.post("/api/v1/prices", MONTHLY, key=tenant_a.key, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert len(_stripe_prices(stripe_sdk())) == 1
    reused = api.post("/api/v1/prices", {**MONTHLY, "unit_amount": 1}, key=tenant_a.key, headers=headers)
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "idempotency_key_reused"


def test_duplicate_key_is_409(api, tenant_a, product, stripe_sdk):
    _create(api, tenant_a)
    response = _create(api, tenant_a, unit_amount=1)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "key_taken"
    assert len(_stripe_prices(stripe_sdk())) == 1


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"interval": None}, "interval", "parameter_missing"),
        ({"type": "one_time"}, "interval", "invalid_parameter"),
        ({"type": "one_time", "interval": None, "trial_days": 7}, "trial_days", "invalid_parameter"),
        ({"type": "one_time", "interval": None, "usage_type": "metered"}, "usage_type", "invalid_parameter"),
        ({"type": "one_time", "interval": None, "interval_count": 2}, "interval_count", "invalid_parameter"),
        ({"usage_type": "metered"}, "meter", "parameter_missing"),
        ({"usage_type": "metered", "meter": "seats"}, "meter", "invalid_meter"),
        ({"usage_type": "metered", "meter": "nope"}, "meter", "invalid_meter"),
        ({"meter": "api_calls"}, "meter", "invalid_parameter"),
        ({"interval_count": 37}, "interval_count", "invalid_parameter"),
        ({"interval": "fortnight"}, "interval", "invalid_parameter"),
        ({"unit_amount": -1}, "unit_amount", "invalid_parameter"),
        ({"unit_amount": 10.5}, "unit_amount", "invalid_parameter"),
        ({"unit_amount": None}, "unit_amount", "parameter_missing"),
        ({"currency": "dollars"}, "currency", "invalid_parameter"),
        ({"trial_days": 0}, "trial_days", "invalid_parameter"),
        ({"tax_behavior": "sometimes"}, "tax_behavior", "invalid_parameter"),
        ({"type": "subscription"}, "type", "invalid_parameter"),
        ({"key": "a b"}, "key", "invalid_parameter"),
        ({"lookup_key": "x"}, "lookup_key", "unknown_parameter"),
    ],
)
def test_bad_create_is_400_and_writes_nothing(
    api, tenant_a, product, metered_feature, stripe_sdk, body, param, code
):
    seats = {"key": "seats", "name": "Seats", "type": "allocation"}
    assert api.post("/api/v1/features", seats, key=tenant_a.key).status_code == 201
    payload = {k: v for k, v in {**MONTHLY, **body}.items() if v is not None}
    response = api.post("/api/v1/prices", payload, key=tenant_a.key)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["code"] == code
    assert not Price.objects.exists()
    sdk = stripe_sdk()
    assert _stripe_prices(sdk) == []
    assert sdk.v1.billing.meters.list().data == []


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"interval": "year"}, "interval", "immutable_field"),
        ({"type": "one_time"}, "type", "immutable_field"),
        ({"key": "pro-m"}, "key", "immutable_field"),
        ({"interval_count": 3}, "interval_count", "immutable_field"),
        ({"usage_type": "metered"}, "usage_type", "immutable_field"),
        ({"meter": "api_calls"}, "meter", "immutable_field"),
        ({"unit_amount": -5}, "unit_amount", "invalid_parameter"),
        ({"nickname": "x"}, "nickname", "unknown_parameter"),
    ],
)
def test_bad_update_is_400_and_changes_nothing(
    api, tenant_a, product, metered_feature, stripe_sdk, body, param, code
):
    created = _create(api, tenant_a).json()
    response = api.patch("/api/v1/prices/pro-monthly", {"unit_amount": 100, **body}, key=tenant_a.key)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["code"] == code
    assert api.get("/api/v1/prices/pro-monthly", key=tenant_a.key).json() == created
    assert [p.id for p in _stripe_prices(stripe_sdk())] == [created["stripe_price_id"]]


def test_moving_a_price_to_another_product_is_refused(api, tenant_a, product):
    assert (
        api.post("/api/v1/products", {"key": "other", "name": "Other"}, key=tenant_a.key).status_code == 201
    )
    _create(api, tenant_a)
    response = api.patch("/api/v1/prices/pro-monthly", {"product": "other"}, key=tenant_a.key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "immutable_field"
    assert Price.objects.get().product.key == "pro"


def test_an_inactive_product_sells_no_new_active_price(api, tenant_a, product, stripe_sdk):
    api.patch("/api/v1/products/pro", {"active": False}, key=tenant_a.key)
    response = _create(api, tenant_a)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "product_inactive"
    assert not Price.objects.exists()
    assert _create(api, tenant_a, active=False).status_code == 201
    reactivate = api.patch("/api/v1/prices/pro-monthly", {"active": True}, key=tenant_a.key)
    assert reactivate.status_code == 409
    assert Price.objects.get().active is False


def test_another_projects_product_in_the_body_is_404_and_writes_nothing(api, tenant_a, tenant_b, stripe_sdk):
    theirs = api.post("/api/v1/products", {"key": "pro", "name": "Pro"}, key=tenant_b.key).json()
    for reference in ("pro", theirs["id"]):
        response = _create(api, tenant_a, product=reference)
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"
        assert response.json()["error"]["param"] == "product"
    assert not Price.objects.exists()
    assert _stripe_prices(stripe_sdk()) == []


def test_another_projects_price_is_404_by_key_and_id(api, tenant_a, tenant_b, stripe_sdk):
    api.post("/api/v1/products", {"key": "pro", "name": "Pro"}, key=tenant_b.key)
    theirs = _create(api, tenant_b).json()
    for path in ("/api/v1/prices/pro-monthly", f"/api/v1/prices/{theirs['id']}"):
        assert api.get(path, key=tenant_a.key).status_code == 404
        response = api.patch(path, {"unit_amount": 1, "active": False}, key=tenant_a.key)
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"
    assert api.get("/api/v1/prices/pro-monthly", key=tenant_b.key).json() == theirs
    assert [(p.unit_amount, p.active) for p in _stripe_prices(stripe_sdk())] == [(3000, True)]


def test_another_projects_product_in_an_update_is_404(api, tenant_a, tenant_b, product):
    theirs = api.post("/api/v1/products", {"key": "theirs", "name": "Theirs"}, key=tenant_b.key).json()
    created = _create(api, tenant_a).json()
    response = api.patch("/api/v1/prices/pro-monthly", {"product": theirs["id"]}, key=tenant_a.key)
    assert response.status_code == 404
    assert api.get("/api/v1/prices/pro-monthly", key=tenant_a.key).json() == created


# --- Stripe failing ------------------------------------------------------------------------------------------


def test_stripe_unreachable_is_503_and_the_retry_completes_without_a_second_price(
    api, tenant_a, product, network, stripe_sdk
):
    network.down = True
    headers = {"Idempotency-Key": "create-monthly"}
    response = api.post("/api/v1/prices", MONTHLY, key=tenant_a.key, headers=headers)

    assert response.status_code == 503
    assert response.json()["error"]["type"] == "payment_provider_error"
    price = Price.objects.get()
    assert price.stripe_price_id == ""  # the row does not claim to be at Stripe
    assert api.get("/api/v1/prices/pro-monthly", key=tenant_a.key).json()["stripe_price_id"] is None

    network.down = False
    retried = api.post("/api/v1/prices", MONTHLY, key=tenant_a.key, headers=headers)
    assert retried.status_code == 201, retried.content
    assert retried.json()["id"] == price.pk
    assert [p.id for p in _stripe_prices(stripe_sdk())] == [retried.json()["stripe_price_id"]]


def test_a_lost_answer_is_found_again_after_stripes_idempotency_window(
    api, tenant_a, product, network, stripe_emulator, stripe_sdk
):
    network.lose = {("POST", "v1/prices")}
    response = _create(api, tenant_a)
    assert response.status_code == 503
    assert Price.objects.get().stripe_price_id == ""
    assert len(_stripe_prices(stripe_sdk())) == 1  # Stripe did create it; we never heard

    stripe_emulator.advance(25 * 3600)  # Stripe forgets the idempotency key: only the lookup key finds it
    network.lose = set()
    retried = _create(api, tenant_a)
    assert retried.status_code == 201, retried.content
    stripe_prices = _stripe_prices(stripe_sdk())
    assert [p.id for p in stripe_prices] == [retried.json()["stripe_price_id"]]


def test_a_lost_product_answer_is_found_by_our_id(api, tenant_a, network, stripe_emulator, stripe_sdk):
    network.lose = {("POST", "v1/products")}
    response = api.post("/api/v1/products", {"key": "pro", "name": "Pro"}, key=tenant_a.key)
    assert response.status_code == 503
    assert Product.objects.get().stripe_product_id == ""
    stripe_emulator.advance(25 * 3600)
    network.lose = set()
    retried = api.post("/api/v1/products", {"key": "pro", "name": "Pro"}, key=tenant_a.key)
    assert retried.status_code == 201, retried.content
    assert [p.id for p in stripe_sdk().v1.products.list().data] == [retried.json()["id"]]


def test_failed_amount_change_leaves_no_current_stripe_price_until_retried(
    api, tenant_a, product, network, stripe_sdk
):
    old_id = _create(api, tenant_a).json()["stripe_price_id"]
    network.down = True
    response = api.patch("/api/v1/prices/pro-monthly", {"unit_amount": 4000}, key=tenant_a.key)
    assert response.status_code == 503
    price = Price.objects.get()
    assert (price.unit_amount, price.stripe_price_id, price.stripe_price_history) == (4000, "", [old_id])

    network.down = False
    retried = api.patch("/api/v1/prices/pro-monthly", {"unit_amount": 4000}, key=tenant_a.key)
    assert retried.status_code == 200
    sdk = stripe_sdk()
    assert sdk.v1.prices.retrieve(retried.json()["stripe_price_id"]).unit_amount == 4000
    assert len(_stripe_prices(sdk)) == 2


def test_a_project_key_stripe_refuses_is_502_and_nothing_claims_a_stripe_id(api, tenant_a, stripe_sdk):
    # The emulator (like Stripe in test mode) refuses live keys with 401: a real authentication failure.
    Project.objects.filter(pk=tenant_a.project.pk).update(stripe_secret_key="sk_live_not_accepted_here")
    response = api.post("/api/v1/products", {"key": "pro", "name": "Pro"}, key=tenant_a.key)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "provider_authentication_failed"
    assert Product.objects.get().stripe_product_id == ""
    assert api.get("/api/v1/products/pro", key=tenant_a.key).json()["stripe_product_id"] is None
    assert stripe_sdk().v1.products.list().data == []


def test_a_meter_event_name_held_by_another_project_is_refused_before_writing(
    api, tenant_a, product, stripe_sdk
):
    # Project `alpha_x` with feature `y` and project `alpha` with feature `x_y` both map to `tg_alpha_x_y`.
    FeatureFactory(
        project=ProjectFactory(slug="alpha_x"),
        key="y",
        type=Feature.Type.METERED,
        stripe_meter_id="mtr_other",
        stripe_meter_event_name="tg_alpha_x_y",
    )
    body = {"key": "x_y", "name": "X", "type": "metered"}
    assert api.post("/api/v1/features", body, key=tenant_a.key).status_code == 201
    response = _create(api, tenant_a, usage_type="metered", meter="x_y")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "meter_event_name_taken"
    assert not Price.objects.exists()
    assert _stripe_prices(stripe_sdk()) == []
