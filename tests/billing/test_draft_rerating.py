"""Re-rating a draft before publishing it (#52 point 2): its subscribers' last closed periods — their real
invoices, licensed and metered lines, from the emulator — priced under the draft's prices beside what Stripe
billed, the entitlements it would take away or lower below use, summed by version and currency; it reads only.
Driven through the emulator's subscriptions, the usage API, a renewal and the webhooks."""

import csv
import io
import re
from datetime import UTC, datetime
from html import unescape

import pytest
import time_machine
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission, User
from django.test import Client

from billing.models import Invoice
from catalog.models import Feature, Price, ProductDraft
from core.models import AuditLogEntry
from customers.models import Customer
from customers.services.customers import customer_ensure_stripe
from entitlements.models import UsageEvent
from tests.catalog import price_create


@pytest.fixture
def metered_pro(api, tenant_a, catalog):
    """`pro` sells `pro-monthly` (30.00 a month) and `pro-calls` (0.02 a call on the `api_calls` meter) and
    gives 100 `api_calls` and `export` (version 2)."""
    for key, kind in (("api_calls", "metered"), ("export", "boolean")):
        made = api.post("/api/v1/features", {"key": key, "name": key, "type": kind}, key=tenant_a.key)
        assert made.status_code == 201, made.json()
    price_create(catalog.pro, "pro-calls", 2, interval="month", usage_type="metered", meter="api_calls")
    answer = api.patch(
        "/api/v1/products/pro", {"features": {"api_calls": 100, "export": True}}, key=tenant_a.key
    )
    assert answer.status_code == 200, answer.json()
    return catalog


def _subscribe(api, tenant, sdk, stripe_webhooks, external_id, quantity):
    api.post("/api/v1/customers", {"external_id": external_id}, key=tenant.key)
    stripe_customer = customer_ensure_stripe(customer=Customer.objects.get(external_id=external_id))
    pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer}).id
    sdk.v1.customers.update(stripe_customer, {"invoice_settings": {"default_payment_method": pm}})
    prices = dict(
        Price.objects.filter(key__in=["pro-monthly", "pro-calls"]).values_list("key", "stripe_price_id")
    )
    created = sdk.v1.subscriptions.create(
        {
            "customer": stripe_customer,
            "items": [{"price": prices["pro-monthly"], "quantity": quantity}, {"price": prices["pro-calls"]}],
        }
    )
    stripe_webhooks.deliver()
    return created


def test_a_draft_is_rerated_against_real_invoices_and_usage_and_nothing_changes(
    api, tenant_a, metered_pro, stripe_emulator, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    first = _subscribe(api, tenant_a, sdk, stripe_webhooks, "user-1", 1)
    # Version 3 (200 calls) before the second subscribes: two cohorts.
    assert (
        api.patch(
            "/api/v1/products/pro", {"features": {"api_calls": 200, "export": True}}, key=tenant_a.key
        ).json()["version"]
        == 3
    )
    _subscribe(api, tenant_a, sdk, stripe_webhooks, "user-2", 2)
    recorded = api.post(
        "/api/v1/usage",
        {"id": "u1", "customer": "user-1", "feature": "api_calls", "quantity": 40},
        key=tenant_a.key,
    )
    assert recorded.status_code == 201, recorded.json()
    assert UsageEvent.objects.get(event_id="u1").meter_status == "reported"
    live = sdk.v1.subscriptions.retrieve(first.id)
    stripe_emulator.advance(live["items"].data[0].current_period_end - stripe_emulator.clock.now() + 60)
    stripe_webhooks.deliver()
    assert Invoice.objects.filter(billing_reason="subscription_cycle").count() == 2

    drafted = api.put(
        "/api/v1/products/pro/draft",
        {
            "features": {"api_calls": 30},
            "prices": {"pro-monthly": {"unit_amount": 3500}, "pro-calls": {"unit_amount": 3}},
        },
        key=tenant_a.key,
    )
    assert drafted.status_code == 200, drafted.json()
    stripe_prices = len(sdk.v1.prices.list({"limit": 100}).data)
    audited = AuditLogEntry.objects.count()

    # Django's clock at Stripe's (the emulator's was advanced a month): the first period has closed.
    travel = time_machine.travel(datetime.fromtimestamp(stripe_emulator.clock.now(), UTC), tick=False)
    travel.start()
    answer = api.get("/api/v1/products/pro/draft/rerating", key=tenant_a.key)
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert (body["object"], body["product"], body["based_on"], body["version"], body["periods"]) == (
        "rerating",
        "pro",
        3,
        4,
        3,
    )
    # user-2: 2 licences at 30.00 → 35.00, no usage; user-1: 1 licence, 40 calls at 0.02 → 0.03.
    rows = [
        (
            row["customer"],
            row["version"],
            row["quantity"],
            len(row["periods"]),
            row["today"],
            row["draft"],
            row["difference"],
        )
        for row in body["subscribers"]
    ]
    assert rows == [("user-2", 3, 2, 1, 6000, 7000, 1000), ("user-1", 2, 1, 1, 3080, 3620, 540)]
    user_1 = body["subscribers"][1]
    assert [(p["today"], p["draft"]) for p in user_1["periods"]] == [(3080, 3620)]
    assert user_1["entitlements"] == [
        {
            "feature": "api_calls",
            "change": "lowered",
            "before": 100,
            "after": 30,
            "used": 40,
            "below_use": True,
        },
        {
            "feature": "export",
            "change": "lost",
            "before": True,
            "after": None,
            "used": None,
            "below_use": False,
        },
    ]
    assert body["subscribers"][0]["entitlements"][0] == {
        "feature": "api_calls",
        "change": "lowered",
        "before": 200,
        "after": 30,
        "used": None,
        "below_use": False,
    }
    assert body["cohorts"] == [
        {
            "version": 2,
            "currency": "usd",
            "subscriptions": 1,
            "periods": 1,
            "today": 3080,
            "draft": 3620,
            "difference": 540,
            "higher": 1,
            "lower": 0,
            "unchanged": 0,
            "losing_features": 1,
            "below_use": 1,
        },
        {
            "version": 3,
            "currency": "usd",
            "subscriptions": 1,
            "periods": 1,
            "today": 6000,
            "draft": 7000,
            "difference": 1000,
            "higher": 1,
            "lower": 0,
            "unchanged": 0,
            "losing_features": 1,
            "below_use": 0,
        },
    ]
    assert body["totals"] == [
        {"currency": "usd", "subscriptions": 2, "today": 9080, "draft": 10620, "difference": 1540}
    ]
    assert body["has_more"] is False

    # One cohort, one row.
    cohort = api.get("/api/v1/products/pro/draft/rerating?version=2&limit=1", key=tenant_a.key).json()
    assert [(row["customer"], row["difference"]) for row in cohort["subscribers"]] == [("user-1", 540)]
    assert [c["version"] for c in cohort["cohorts"]] == [2]
    top = api.get("/api/v1/products/pro/draft/rerating?limit=1", key=tenant_a.key).json()
    assert ([row["customer"] for row in top["subscribers"]], top["has_more"]) == (["user-2"], True)
    for query, param in (("periods=0", "periods"), ("periods=x", "periods"), ("limit=1001", "limit")):
        bad = api.get(f"/api/v1/products/pro/draft/rerating?{query}", key=tenant_a.key)
        assert (bad.status_code, bad.json()["error"]["param"]) == (400, param)

    # It read only: the prices, Stripe, the draft and the audit log are as they were.
    assert dict(
        Price.objects.filter(key__in=["pro-monthly", "pro-calls"]).values_list("key", "unit_amount")
    ) == {"pro-monthly": 3000, "pro-calls": 2}
    assert len(sdk.v1.prices.list({"limit": 100}).data) == stripe_prices
    assert ProductDraft.objects.get().prices == {
        "pro-calls": {"unit_amount": 3},
        "pro-monthly": {"unit_amount": 3500},
    }
    assert AuditLogEntry.objects.count() == audited
    assert Feature.objects.get(key="api_calls").product_values.get().value == 200

    # The back office's CSV: every subscriber, the same figures.
    root = Client()
    root.force_login(User.objects.create_superuser("root", password="pw"))
    page = root.get(f"/admin/catalog/product/{quote(metered_pro.pro.pk)}/versions/")
    link = re.search(r'href="([^"]+)" id="tg-rerating"', page.content.decode())
    assert link is not None
    download = root.get(unescape(link.group(1)))
    assert (download.status_code, download["Content-Type"]) == (200, "text/csv; charset=utf-8")
    assert 'filename="rerating-pro-v4.csv"' in download["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    assert rows[0][:9] == [
        "customer",
        "subscription",
        "version",
        "currency",
        "quantity",
        "periods",
        "today",
        "draft",
        "difference",
    ]
    assert [row[:1] + row[2:] for row in rows[1:]] == [
        ["user-2", "3", "usd", "2", "1", "6000", "7000", "1000", "export", "api_calls 200→30", ""],
        [
            "user-1",
            "2",
            "usd",
            "1",
            "1",
            "3080",
            "3620",
            "540",
            "export",
            "api_calls 100→30",
            "api_calls (uses 40)",
        ],
    ]
    cohort_csv = root.get(f"/admin/billing/subscription/rerating/{quote(metered_pro.pro.pk)}/?version=3")
    assert [row[0] for row in csv.reader(io.StringIO(cohort_csv.content.decode()))] == ["customer", "user-2"]
    # Staff who may not view subscriptions get neither the link nor the CSV.
    clerk = User.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(
        Permission.objects.get(content_type__app_label="catalog", codename="view_product")
    )
    staff = Client()
    staff.force_login(clerk)
    assert (
        'id="tg-rerating"'
        not in staff.get(f"/admin/catalog/product/{quote(metered_pro.pro.pk)}/versions/").content.decode()
    )
    assert staff.get(f"/admin/billing/subscription/rerating/{quote(metered_pro.pro.pk)}/").status_code == 403
    travel.stop()


def test_another_projects_key_cannot_rerate_a_draft(api, tenant_a, tenant_b, metered_pro, catalog_b):
    assert (
        api.put("/api/v1/products/pro/draft", {"features": {"api_calls": 1}}, key=tenant_a.key).status_code
        == 200
    )
    # Project B's own `pro` has no draft; project A's draft is not reachable by its id either.
    other = api.get("/api/v1/products/pro/draft/rerating", key=tenant_b.key)
    assert (other.status_code, other.json()["error"]["code"]) == (404, "no_draft")
    by_id = api.get(f"/api/v1/products/{metered_pro.pro.pk}/draft/rerating", key=tenant_b.key)
    assert by_id.status_code == 404
    assert "api_calls" not in by_id.text
