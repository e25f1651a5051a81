"""Tiered prices (issue #15): created through the API and `sync_catalog`, synced to Stripe as tiered prices, and
charged by one rule — the emulator's invoice for a subscription checkout and Tollgate's payment amount agree."""

import io
from urllib.parse import urlencode

import pytest
import yaml
from django.core.management import call_command

from billing.models import Payment
from catalog.models import Price
from catalog.pricing import price_amount
from core.models import AuditLogEntry

OK = "https://app.example.com/ok"
CANCEL = "https://app.example.com/cancel"

# 1–10 at $5.00, 11+ at $4.00 plus a $10.00 flat fee for reaching the second tier.
TIERS = [{"up_to": 10, "unit_amount": 500}, {"up_to": "inf", "unit_amount": 400, "flat_amount": 1000}]
STORED_TIERS = [
    {"up_to": 10, "unit_amount": 500, "flat_amount": None},
    {"up_to": "inf", "unit_amount": 400, "flat_amount": 1000},
]
STRIPE_TIERS = [
    {
        "flat_amount": None,
        "flat_amount_decimal": None,
        "unit_amount": 500,
        "unit_amount_decimal": "500",
        "up_to": 10,
    },
    {
        "flat_amount": 1000,
        "flat_amount_decimal": "1000",
        "unit_amount": 400,
        "unit_amount_decimal": "400",
        "up_to": None,
    },
]


def _price_body(mode, key="seats-monthly", **extra):
    return {
        "key": key,
        "product": "team",
        "currency": "usd",
        "type": "recurring",
        "interval": "month",
        "billing_scheme": "tiered",
        "tiers_mode": mode,
        "tiers": TIERS,
        **extra,
    }


@pytest.fixture
def product(api, tenant_a):
    response = api.post("/api/v1/products", {"key": "team", "name": "Team"}, key=tenant_a.key)
    assert response.status_code == 201
    return response.json()


@pytest.mark.parametrize("mode", ["graduated", "volume"])
def test_a_tiered_price_is_created_and_synced_to_stripe_with_its_tiers(
    api, tenant_a, product, stripe_sdk, mode
):
    response = api.post("/api/v1/prices", _price_body(mode), key=tenant_a.key)

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["billing_scheme"], body["tiers_mode"], body["unit_amount"]) == ("tiered", mode, None)
    assert body["tiers"] == STORED_TIERS
    price = Price.objects.get(pk=body["id"])
    assert (price.billing_scheme, price.tiers_mode, price.unit_amount) == ("tiered", mode, None)
    assert price.tiers == STORED_TIERS
    stripe_price = stripe_sdk().v1.prices.retrieve(body["stripe_price_id"], {"expand": ["tiers"]})
    assert (stripe_price.billing_scheme, stripe_price.tiers_mode, stripe_price.unit_amount) == (
        "tiered",
        mode,
        None,
    )
    assert [tier.to_dict(for_json=True) for tier in stripe_price.tiers] == STRIPE_TIERS
    assert stripe_price.recurring.interval == "month"
    assert api.get(f"/api/v1/prices/{body['id']}", key=tenant_a.key).json() == body


def test_a_per_unit_price_says_so(api, tenant_a, product):
    body = {
        "key": "team-monthly",
        "product": "team",
        "currency": "usd",
        "unit_amount": 900,
        "type": "one_time",
    }
    created = api.post("/api/v1/prices", body, key=tenant_a.key).json()
    assert (created["billing_scheme"], created["tiers_mode"], created["tiers"], created["unit_amount"]) == (
        "per_unit",
        None,
        None,
        900,
    )


@pytest.mark.parametrize(
    ("change", "code", "param"),
    [
        ({"unit_amount": 500}, "invalid_parameter", "unit_amount"),
        ({"tiers_mode": None}, "parameter_missing", "tiers_mode"),
        ({"tiers_mode": "stairs"}, "invalid_parameter", "tiers_mode"),
        ({"tiers": None}, "invalid_tiers", "tiers"),
        ({"tiers": []}, "invalid_tiers", "tiers"),
        ({"tiers": [{"up_to": 10, "unit_amount": 500}]}, "invalid_tiers", "tiers[0][up_to]"),
        (
            {"tiers": [{"up_to": "inf", "unit_amount": 5}, {"up_to": "inf", "unit_amount": 4}]},
            "invalid_tiers",
            "tiers[0][up_to]",
        ),
        (
            {
                "tiers": [
                    {"up_to": 10, "unit_amount": 5},
                    {"up_to": 10, "unit_amount": 4},
                    {"up_to": "inf", "unit_amount": 3},
                ]
            },
            "invalid_tiers",
            "tiers[1][up_to]",
        ),
        (
            {"tiers": [{"up_to": 0, "unit_amount": 5}, {"up_to": "inf", "unit_amount": 4}]},
            "invalid_tiers",
            "tiers[0][up_to]",
        ),
        ({"tiers": [{"up_to": 10, "unit_amount": 5}, {"up_to": "inf"}]}, "invalid_tiers", "tiers[1]"),
        (
            {"tiers": [{"up_to": 10, "unit_amount": 5.5}, {"up_to": "inf", "unit_amount": 4}]},
            "invalid_tiers",
            "tiers[0][unit_amount]",
        ),
        (
            {"tiers": [{"up_to": 10, "unit_amount": -1}, {"up_to": "inf", "unit_amount": 4}]},
            "invalid_tiers",
            "tiers[0][unit_amount]",
        ),
        (
            {"tiers": [{"up_to": 10, "flat_amount": "100"}, {"up_to": "inf", "unit_amount": 4}]},
            "invalid_tiers",
            "tiers[0][flat_amount]",
        ),
        (
            {"tiers": [{"up_to": 10, "unit_amount": 5, "per": 1}, {"up_to": "inf", "unit_amount": 4}]},
            "invalid_tiers",
            "tiers[0]",
        ),
        ({"tiers": "1-10: 5"}, "invalid_tiers", "tiers"),
        ({"billing_scheme": "per_unit"}, "invalid_parameter", "tiers_mode"),
        (
            {"billing_scheme": "per_unit", "tiers_mode": None, "tiers": None},
            "parameter_missing",
            "unit_amount",
        ),
    ],
)
def test_bad_tiers_are_400_and_write_nothing(api, tenant_a, product, stripe_sdk, change, code, param):
    body = {k: v for k, v in _price_body("graduated", **change).items() if v is not None}
    response = api.post("/api/v1/prices", body, key=tenant_a.key)

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    assert not Price.objects.exists()
    assert not AuditLogEntry.objects.filter(action="price.created").exists()
    assert stripe_sdk().v1.prices.list().data == []


def test_another_projects_tiered_price_is_404(api, tenant_a, tenant_b, product):
    created = api.post("/api/v1/prices", _price_body("volume"), key=tenant_a.key).json()
    for ref in (created["id"], created["key"]):
        response = api.get(f"/api/v1/prices/{ref}", key=tenant_b.key)
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"


def test_new_tiers_make_a_new_stripe_price_and_old_subscribers_keep_theirs(
    api, tenant_a, product, stripe_sdk
):
    created = api.post("/api/v1/prices", _price_body("graduated"), key=tenant_a.key).json()
    cheaper = [{"up_to": 10, "unit_amount": 450}, {"up_to": "inf", "unit_amount": 350}]

    response = api.patch(f"/api/v1/prices/{created['key']}", {"tiers": cheaper}, key=tenant_a.key)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["tiers"] == [{**t, "flat_amount": None} for t in cheaper]
    assert body["stripe_price_id"] != created["stripe_price_id"]
    new = stripe_sdk().v1.prices.retrieve(body["stripe_price_id"], {"expand": ["tiers"]})
    assert [(t.up_to, t.unit_amount, t.flat_amount) for t in new.tiers] == [
        (10, 450, None),
        (None, 350, None),
    ]
    assert Price.objects.get(pk=created["id"]).stripe_price_history == [created["stripe_price_id"]]
    refused = api.patch(f"/api/v1/prices/{created['key']}", {"unit_amount": 100}, key=tenant_a.key)
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "unit_amount")
    mode = api.patch(f"/api/v1/prices/{created['key']}", {"tiers_mode": "volume"}, key=tenant_a.key)
    assert (mode.status_code, mode.json()["error"]["code"]) == (400, "immutable_field")
    assert Price.objects.get(pk=created["id"]).tiers == body["tiers"]


def test_sync_catalog_with_tiers_is_idempotent(tenant_a, tmp_path, stripe_sdk):
    document = {
        "products": [
            {
                "key": "team",
                "name": "Team",
                "prices": [
                    {
                        "key": "seats-graduated",
                        "currency": "usd",
                        "type": "recurring",
                        "interval": "month",
                        "billing_scheme": "tiered",
                        "tiers_mode": "graduated",
                        "tiers": TIERS,
                    },
                    {
                        "key": "seats-volume",
                        "currency": "usd",
                        "type": "recurring",
                        "interval": "month",
                        "billing_scheme": "tiered",
                        "tiers_mode": "volume",
                        "tiers": TIERS,
                    },
                ],
            }
        ]
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert "up_to: inf" in path.read_text()  # as people write it: a plain string

    call_command("sync_catalog", tenant_a.project.slug, str(path), stdout=io.StringIO())
    prices = {p.key: p for p in Price.objects.filter(project=tenant_a.project)}
    assert {k: (p.tiers_mode, p.tiers, p.unit_amount) for k, p in prices.items()} == {
        "seats-graduated": ("graduated", STORED_TIERS, None),
        "seats-volume": ("volume", STORED_TIERS, None),
    }
    stripe_prices = stripe_sdk().v1.prices.list({"expand": ["data.tiers"]}).data
    assert sorted(
        (p.tiers_mode, [t.to_dict(for_json=True) for t in p.tiers] == STRIPE_TIERS) for p in stripe_prices
    ) == [
        ("graduated", True),
        ("volume", True),
    ]

    out = io.StringIO()
    call_command("sync_catalog", tenant_a.project.slug, str(path), stdout=out)
    assert "create" not in out.getvalue()
    assert "update" not in out.getvalue()
    assert {p.key: p.stripe_price_id for p in Price.objects.all()} == {
        k: p.stripe_price_id for k, p in prices.items()
    }
    assert len(stripe_sdk().v1.prices.list().data) == 2


def test_sync_catalog_refuses_bad_tiers_and_writes_nothing(tenant_a, tmp_path, stripe_sdk):
    from django.core.management import CommandError

    document = {
        "products": [
            {
                "key": "team",
                "name": "Team",
                "prices": [
                    {
                        "key": "seats",
                        "currency": "usd",
                        "type": "recurring",
                        "interval": "month",
                        "billing_scheme": "tiered",
                        "tiers_mode": "graduated",
                        "tiers": [{"up_to": 10, "unit_amount": 500}],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(CommandError, match=r"products\[0\]\.prices\[0\]\.tiers\[0\]\[up_to\]"):
        call_command("sync_catalog", tenant_a.project.slug, str(path), stdout=io.StringIO())
    assert not Price.objects.exists()
    assert stripe_sdk().v1.prices.list().data == []


@pytest.mark.parametrize(
    ("mode", "quantity", "expected"),
    [
        ("graduated", 1, 500),
        ("graduated", 10, 5000),
        ("graduated", 11, 6400),
        ("graduated", 15, 8000),
        ("volume", 1, 500),
        ("volume", 10, 5000),
        ("volume", 11, 5400),
        ("volume", 15, 7000),
    ],
)
def test_price_amount_follows_the_tiers(mode, quantity, expected):
    price = Price(billing_scheme="tiered", tiers_mode=mode, tiers=STORED_TIERS, unit_amount=None)
    assert price_amount(price, quantity) == expected


@pytest.mark.parametrize(("mode", "expected"), [("graduated", 8000), ("volume", 7000)])
def test_a_subscription_checkout_for_15_seats_costs_what_stripe_invoices(
    api, tenant_a, product, stripe_emulator, stripe_sdk, mode, expected
):
    api.post("/api/v1/prices", _price_body(mode), key=tenant_a.key)
    response = api.post(
        "/api/v1/checkout/subscription",
        {
            "customer": "user-1",
            "price": "seats-monthly",
            "quantity": 15,
            "success_url": OK,
            "cancel_url": CANCEL,
        },
        key=tenant_a.key,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["amount_total"] == expected
    payment = Payment.objects.get(pk=body["payment"])
    assert payment.amount == expected
    assert payment.items[0]["unit_amount"] is None
    assert payment.items[0]["amount"] == expected
    session = stripe_sdk().v1.checkout.sessions.retrieve(body["stripe_session_id"])
    assert session.amount_total == expected

    completed = stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{body['stripe_session_id']}/complete",
        body=urlencode({"card": "4242424242424242", "email": "ada@example.com"}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert completed.status == 200, completed.body
    invoice = stripe_sdk().v1.invoices.retrieve(completed.data()["invoice"])
    assert (invoice.total, invoice.amount_paid) == (expected, expected)
    assert [(line.quantity, line.amount) for line in invoice.lines.data] == [(15, expected)]
    assert api.get(f"/api/v1/payments/{payment.pk}", key=tenant_a.key).json()["amount"] == invoice.total


def test_a_cart_with_a_tiered_price_totals_by_the_tiers(api, tenant_a, product):
    api.post(
        "/api/v1/prices",
        _price_body("volume", key="seats-once", type="one_time", interval=None),
        key=tenant_a.key,
    )
    body = {"key": "team-extra", "product": "team", "currency": "usd", "unit_amount": 250, "type": "one_time"}
    assert api.post("/api/v1/prices", body, key=tenant_a.key).status_code == 201
    cart = api.post("/api/v1/carts", {"customer": "user-1"}, key=tenant_a.key).json()
    api.post(f"/api/v1/carts/{cart['id']}/items", {"price": "seats-once", "quantity": 15}, key=tenant_a.key)
    added = api.post(
        f"/api/v1/carts/{cart['id']}/items", {"price": "team-extra", "quantity": 2}, key=tenant_a.key
    )
    assert added.status_code == 201, added.content
    data = api.get(f"/api/v1/carts/{cart['id']}", key=tenant_a.key).json()
    assert [(i["price"], i["unit_amount"], i["amount"]) for i in data["items"]] == [
        ("seats-once", None, 7000),
        ("team-extra", 250, 500),
    ]
    assert data["amount_total"] == 7500
