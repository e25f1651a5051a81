"""The public plans of a project (API.md "Plans", issue #15): read without a key, only what the project marks
`public`, cached under the project's catalog version so a change shows at once, rate-limited per address."""

import io

import pytest
import yaml
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Product
from core.actors import Actor
from core.models import AuditLogEntry
from projects.models import Project
from projects.services.projects import project_update

URL = "/api/v1/public/alpha/plans"
ACTOR = Actor.system("tests")


def _sync(path, capture):
    """sync_catalog as an operator runs it: its writes commit, and what they queue on commit runs."""
    out = io.StringIO()
    with capture(execute=True):
        call_command("sync_catalog", "alpha", str(path), stdout=out)
    return out.getvalue()


def _post(api, tenant, path, body):
    response = api.post(path, body, key=tenant.key)
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def seeded(api, tenant_a, stripe_sdk):
    """Free, Pro and Enterprise for sale; an internal product, a retired one and a retired price that are not."""
    for key, name, feature_type in [
        ("sso", "Single sign-on", "boolean"),
        ("api_calls", "API calls", "metered"),
        ("seats", "Seats", "allocation"),
        ("support", "Support", "static"),
    ]:
        _post(api, tenant_a, "/api/v1/features", {"key": key, "name": name, "type": feature_type})
    # Created in an order other than the page's: the answer is cheapest first.
    _post(
        api,
        tenant_a,
        "/api/v1/products",
        {
            "key": "enterprise",
            "name": "Enterprise",
            "public": True,
            "features": {"sso": True, "api_calls": None, "support": {"tier": "dedicated"}},
        },
    )
    _post(
        api,
        tenant_a,
        "/api/v1/products",
        {
            "key": "pro",
            "name": "Pro",
            "description": "For growing teams",
            "public": True,
            "features": {"sso": True, "api_calls": 100_000, "seats": {"per_unit": 5}},
        },
    )
    _post(
        api,
        tenant_a,
        "/api/v1/products",
        {"key": "free", "name": "Free", "public": True, "features": {"api_calls": 1000}},
    )
    _post(
        api,
        tenant_a,
        "/api/v1/products",
        {"key": "internal", "name": "Staff plan", "features": {"sso": True}},
    )
    _post(api, tenant_a, "/api/v1/products", {"key": "legacy", "name": "Legacy", "public": True})
    for body in [
        {"key": "free-monthly", "product": "free", "unit_amount": 0, "interval": "month"},
        {"key": "pro-yearly", "product": "pro", "unit_amount": 30000, "interval": "year"},
        {"key": "pro-monthly", "product": "pro", "unit_amount": 3000, "interval": "month", "trial_days": 14},
        {
            "key": "pro-monthly-eur",
            "product": "pro",
            "unit_amount": 2800,
            "currency": "eur",
            "interval": "month",
        },
        {"key": "pro-weekly", "product": "pro", "unit_amount": 900, "interval": "week", "active": False},
        {"key": "pro-setup", "product": "pro", "unit_amount": 5000, "type": "one_time"},
        {"key": "staff-monthly", "product": "internal", "unit_amount": 100, "interval": "month"},
        {"key": "legacy-monthly", "product": "legacy", "unit_amount": 1000, "interval": "month"},
    ]:
        body = {"currency": "usd", "type": "recurring", **body}
        _post(api, tenant_a, "/api/v1/prices", body)
    assert api.patch("/api/v1/products/legacy", {"active": False}, key=tenant_a.key).status_code == 200


def _recurring(key, currency, amount, interval, trial_days=None):
    return {
        "key": key,
        "currency": currency,
        "unit_amount": amount,
        "billing_scheme": "per_unit",
        "tiers_mode": None,
        "tiers": None,
        "type": "recurring",
        "interval": interval,
        "interval_count": 1,
        "trial_days": trial_days,
        "usage_type": "licensed",
    }


EXPECTED = [
    {
        "key": "free",
        "name": "Free",
        "description": None,
        "account_cap": None,
        "prices": [_recurring("free-monthly", "usd", 0, "month")],
        "features": [{"key": "api_calls", "name": "API calls", "type": "metered", "value": 1000}],
    },
    {
        "key": "pro",
        "name": "Pro",
        "description": "For growing teams",
        "account_cap": None,
        "prices": [
            _recurring("pro-monthly-eur", "eur", 2800, "month"),
            _recurring("pro-monthly", "usd", 3000, "month", trial_days=14),
            {
                "key": "pro-setup",
                "currency": "usd",
                "unit_amount": 5000,
                "billing_scheme": "per_unit",
                "tiers_mode": None,
                "tiers": None,
                "type": "one_time",
                "interval": None,
                "interval_count": None,
                "trial_days": None,
                "usage_type": None,
            },
            _recurring("pro-yearly", "usd", 30000, "year"),
        ],
        "features": [
            {"key": "api_calls", "name": "API calls", "type": "metered", "value": 100_000},
            {"key": "seats", "name": "Seats", "type": "allocation", "value": {"per_unit": 5}},
            {"key": "sso", "name": "Single sign-on", "type": "boolean", "value": True},
        ],
    },
    {
        "key": "enterprise",
        "name": "Enterprise",
        "description": None,
        "account_cap": None,
        "prices": [],
        "features": [
            {"key": "api_calls", "name": "API calls", "type": "metered", "value": None},
            {"key": "sso", "name": "Single sign-on", "type": "boolean", "value": True},
            {"key": "support", "name": "Support", "type": "static", "value": {"tier": "dedicated"}},
        ],
    },
]


def test_the_public_plans_of_a_seeded_catalog_without_a_key(api, tenant_a, seeded):
    response = api.get(URL)

    assert response.status_code == 200, response.content
    # Only public, active products and their active prices; no Stripe ids nor our ids, only keys.
    assert response.json() == {"object": "list", "data": EXPECTED, "has_more": False}
    assert response["Cache-Control"] == "public, max-age=60"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert b"prd_" not in response.content
    assert b"prc_" not in response.content


def test_a_key_is_ignored(api, tenant_a, tenant_b, seeded):
    anonymous = api.get(URL).json()

    assert api.get(URL, key=tenant_a.key).json() == anonymous
    assert api.get(URL, key=tenant_b.key).json() == anonymous
    invalid = api.get(URL, key="tg_test_not_a_key")
    assert (invalid.status_code, invalid.json()) == (200, anonymous)


def test_a_project_without_public_products_lists_none(api, tenant_a, tenant_b, seeded):
    response = api.get("/api/v1/public/bravo/plans")

    assert response.status_code == 200
    assert response.json() == {"object": "list", "data": [], "has_more": False}


def test_an_unknown_project_is_a_404_in_the_error_envelope(api, tenant_a, seeded):
    response = api.get("/api/v1/public/nope/plans")

    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "type": "not_found",
            "code": "resource_missing",
            "message": "No such project: 'nope'.",
            "param": None,
        }
    }
    assert "public" not in response.get("Cache-Control", "")


def test_a_suspended_project_is_a_404_at_once_even_when_cached(
    api, tenant_a, seeded, django_capture_on_commit_callbacks
):
    assert api.get(URL).json()["data"] == EXPECTED  # now cached

    with django_capture_on_commit_callbacks(execute=True):
        project_update(
            actor=ACTOR, project=tenant_a.project, reason="unpaid", status=Project.Status.SUSPENDED
        )
    suspended = api.get(URL)
    assert suspended.status_code == 404
    assert suspended.json()["error"]["code"] == "resource_missing"

    with django_capture_on_commit_callbacks(execute=True):
        project_update(actor=ACTOR, project=tenant_a.project, status=Project.Status.ACTIVE)
    assert api.get(URL).json()["data"] == EXPECTED


@pytest.mark.parametrize(
    ("path", "body", "check"),
    [
        ("/api/v1/products/pro", {"name": "Professional"}, lambda data: data[1]["name"] == "Professional"),
        (
            "/api/v1/products/pro",
            {"public": False},
            lambda data: [p["key"] for p in data] == ["free", "enterprise"],
        ),
        (
            "/api/v1/products/free",
            {"active": False},
            lambda data: [p["key"] for p in data] == ["pro", "enterprise"],
        ),
        (
            "/api/v1/prices/pro-monthly",
            {"unit_amount": 3500},
            lambda data: data[1]["prices"][1]["unit_amount"] == 3500,
        ),
        ("/api/v1/prices/pro-setup", {"active": False}, lambda data: len(data[1]["prices"]) == 3),
        (
            "/api/v1/features/seats",
            {"name": "Team members"},
            lambda data: data[1]["features"][1]["name"] == "Team members",
        ),
    ],
    ids=[
        "product-renamed",
        "product-unpublished",
        "product-retired",
        "price-repriced",
        "price-retired",
        "feature-renamed",
    ],
)
def test_a_catalog_change_is_visible_on_the_next_call(api, tenant_a, seeded, path, body, check):
    assert api.get(URL).json()["data"] == EXPECTED  # now cached

    assert api.patch(path, body, key=tenant_a.key).status_code == 200

    assert check(api.get(URL).json()["data"])


def test_a_new_price_is_visible_on_the_next_call(api, tenant_a, seeded):
    assert api.get(URL).json()["data"] == EXPECTED

    _post(
        api,
        tenant_a,
        "/api/v1/prices",
        {
            "key": "free-yearly",
            "product": "free",
            "currency": "usd",
            "unit_amount": 0,
            "type": "recurring",
            "interval": "year",
        },
    )

    assert [p["key"] for p in api.get(URL).json()["data"][0]["prices"]] == ["free-monthly", "free-yearly"]


def test_a_warm_answer_costs_no_sql_beyond_the_epoch_check(api, tenant_a, seeded):
    with CaptureQueriesContext(connection) as cold:
        assert api.get(URL).status_code == 200
    # The project, the products, their prices, their feature values, the features, and the epoch check when the
    # process's copy of the epoch is older than CACHE_EPOCH_CHECK_SECONDS: a number that no catalog size changes.
    assert 5 <= len(cold.captured_queries) <= 6

    for _ in range(3):
        with CaptureQueriesContext(connection) as warm:
            response = api.get(URL)
        assert response.json()["data"] == EXPECTED
        tables = [query["sql"] for query in warm.captured_queries]
        assert len(tables) <= 1
        assert all('"core_cacheepoch"' in sql for sql in tables)


def test_the_limit_per_client_address(api, tenant_a, seeded, settings):
    settings.PUBLIC_RATE_LIMIT_PER_MINUTE = 2
    assert [api.get(URL).status_code for _ in range(2)] == [200, 200]

    limited = api.get(URL)

    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(limited["Retry-After"]) <= 60
    # A project key's own limit is separate.
    assert api.get("/api/v1/products", key=tenant_a.key).status_code == 200


def test_the_public_flag_through_the_catalog_api_is_audited(api, tenant_a, stripe_sdk):
    created = _post(api, tenant_a, "/api/v1/products", {"key": "pro", "name": "Pro"})
    assert created["public"] is False

    updated = api.patch("/api/v1/products/pro", {"public": True}, key=tenant_a.key)

    assert updated.status_code == 200
    assert updated.json()["public"] is True
    assert Product.objects.get(key="pro").public is True
    entry = AuditLogEntry.objects.get(action="product.updated")
    assert (entry.before["public"], entry.after["public"]) == (False, True)
    assert api.get("/api/v1/products/pro", key=tenant_a.key).json()["public"] is True
    bad = api.patch("/api/v1/products/pro", {"public": "sometimes"}, key=tenant_a.key)
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "public")
    assert AuditLogEntry.objects.filter(action="product.updated").count() == 1


def test_the_public_flag_through_sync_catalog(
    tmp_path, api, tenant_a, stripe_sdk, django_capture_on_commit_callbacks
):
    document = {
        "features": [{"key": "sso", "name": "Single sign-on", "type": "boolean"}],
        "products": [
            {
                "key": "pro",
                "name": "Pro",
                "public": True,
                "features": {"sso": True},
                "prices": [
                    {
                        "key": "pro-monthly",
                        "currency": "usd",
                        "unit_amount": 3000,
                        "type": "recurring",
                        "interval": "month",
                    }
                ],
            },
            {"key": "internal", "name": "Internal"},
        ],
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(document))
    _sync(path, django_capture_on_commit_callbacks)

    assert [p["key"] for p in api.get(URL).json()["data"]] == ["pro"]
    assert dict(Product.objects.filter(project=tenant_a.project).values_list("key", "public")) == {
        "pro": True,
        "internal": False,
    }

    document["products"][0]["public"] = False
    path.write_text(yaml.safe_dump(document))
    assert "public: true → false" in _sync(path, django_capture_on_commit_callbacks)
    assert api.get(URL).json()["data"] == []
    assert "no changes" in _sync(path, django_capture_on_commit_callbacks).lower()


def test_the_schema_documents_it_without_a_key(api):
    operation = api.get("/api/schema/", json_body={"format": "json"}).json()["paths"][
        "/api/v1/public/{slug}/plans"
    ]["get"]

    assert operation["operationId"] == "public_plans_list"
    # Every operation names the scheme it takes; an empty list is OpenAPI's "no key" (Swagger sends none).
    assert operation["security"] == []
    assert sorted(operation["responses"]) == ["200", "400", "404", "429"]


def test_a_tiered_price_shows_its_tiers(api, tenant_a, seeded):
    _post(
        api,
        tenant_a,
        "/api/v1/prices",
        {
            "key": "pro-seats",
            "product": "pro",
            "currency": "usd",
            "billing_scheme": "tiered",
            "tiers_mode": "graduated",
            "tiers": [
                {"up_to": 10, "unit_amount": 500},
                {"up_to": "inf", "unit_amount": 400, "flat_amount": 1000},
            ],
            "type": "recurring",
            "interval": "month",
        },
    )
    (tiered,) = [p for p in api.get(URL).json()["data"][1]["prices"] if p["key"] == "pro-seats"]
    assert {k: tiered[k] for k in ("unit_amount", "billing_scheme", "tiers_mode", "tiers")} == {
        "unit_amount": None,
        "billing_scheme": "tiered",
        "tiers_mode": "graduated",
        "tiers": [
            {"up_to": 10, "unit_amount": 500, "flat_amount": None},
            {"up_to": "inf", "unit_amount": 400, "flat_amount": 1000},
        ],
    }


def test_tiered_prices_and_unpriced_products_keep_a_pricing_pages_order(api, tenant_a, seeded):
    """The same order on PostgreSQL and SQLite (which sort NULL at opposite ends unless told): a price without a
    unit amount (tiered) after the fixed ones of its currency; a product priced only by tiers after the products
    with a fixed price and before those without any price ("contact us")."""
    tiers = [{"up_to": 10, "unit_amount": 500}, {"up_to": "inf", "unit_amount": 400}]
    tiered = {"currency": "usd", "billing_scheme": "tiered", "tiers_mode": "graduated", "tiers": tiers}
    _post(api, tenant_a, "/api/v1/products", {"key": "team", "name": "Team", "public": True})
    for key, product in [("team-seats", "team"), ("pro-seats", "pro")]:
        body = {"key": key, "product": product, **tiered, "type": "recurring", "interval": "month"}
        _post(api, tenant_a, "/api/v1/prices", body)

    data = api.get(URL).json()["data"]

    assert [product["key"] for product in data] == ["free", "pro", "team", "enterprise"]
    assert [price["key"] for price in data[1]["prices"]] == [
        "pro-monthly-eur",
        "pro-monthly",
        "pro-setup",
        "pro-yearly",
        "pro-seats",
    ]
