"""Plan versions (#52 point 1): a change to a product's feature values publishes its next version; subscribers
keep the version they bought — limits, booleans and plan credits — while new checkouts get the latest; versions
are listed with their differences; a draft is edited, then published, and refused when another version was
published since. Driven through the emulator's Checkout and webhooks, read through the API."""

import pytest
from django.utils import timezone

from billing.models import SubscriptionItem
from catalog.models import Product, ProductDraft, ProductVersion
from core.models import AuditLogEntry
from customers.models import Customer
from entitlements.explain import entitlements_explain
from entitlements.models import CreditLot
from stripe_gateway.client import install_http_client
from tests.catalog.test_catalog_prices import Network
from tests.entitlements.helpers import check, listed
from tests.entitlements.test_plan_credits import _no_failed_events, _subscribe

V2 = {"api_calls": 1000, "export": True, "ai_credits": 500}
V3 = {"api_calls": 300, "ai_credits": 200}


@pytest.fixture
def versioned(api, tenant_a, catalog):
    """`pro` at version 2 (`V2`): 1,000 `api_calls` a period, `export`, 500 `ai_credits` a paid period."""
    for key, kind in (("api_calls", "metered"), ("export", "boolean"), ("ai_credits", "credits")):
        made = api.post("/api/v1/features", {"key": key, "name": key, "type": kind}, key=tenant_a.key)
        assert made.status_code == 201, made.json()
    answer = api.patch("/api/v1/products/pro", {"features": V2}, key=tenant_a.key)
    assert answer.status_code == 200, answer.json()
    assert (answer.json()["version"], answer.json()["features"]) == (2, V2)
    return catalog


def _versions(api, tenant):
    answer = api.get("/api/v1/products/pro/versions", key=tenant.key)
    assert answer.status_code == 200, answer.json()
    return answer.json()["data"]


def _limits(api, tenant, customer):
    rows = listed(api, tenant.key, customer)
    return (
        rows["api_calls"]["limit"],
        check(api, tenant.key, customer, "export")["allowed"],
        check(api, tenant.key, customer, "ai_credits")["balance"],
    )


def test_subscribers_keep_the_version_they_bought_and_new_checkouts_get_the_latest(
    api, tenant_a, versioned, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, customer="early")
    _no_failed_events()
    assert _limits(api, tenant_a, "early") == (1000, True, 500)

    changed = api.patch("/api/v1/products/pro", {"features": V3}, key=tenant_a.key)
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["version"], changed.json()["features"]) == (3, V3)
    # The early subscriber's answers are those of version 2, still: nothing of version 3 reached them.
    assert _limits(api, tenant_a, "early") == (1000, True, 500)
    explained = entitlements_explain(
        project=tenant_a.project, customer=Customer.objects.get(project=tenant_a.project, external_id="early")
    )
    calls = next(f for f in explained.features if f.key == "api_calls")
    assert [(s.kind, s.value) for s in calls.sources] == [("subscription", 1000)]

    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, customer="late")
    _no_failed_events()
    assert _limits(api, tenant_a, "late") == (300, False, 200)
    assert _limits(api, tenant_a, "early") == (1000, True, 500)
    items = dict(
        SubscriptionItem.objects.values_list("subscription__customer__external_id", "product_version")
    )
    assert items == {"early": 2, "late": 3}
    # Each one's plan credits are their version's.
    lots = dict(CreditLot.objects.values_list("customer__external_id", "amount"))
    assert lots == {"early": 500, "late": 200}

    # The renewal of the early subscriber grants version 2's credits again.
    stripe_emulator.advance(31 * 86400)
    stripe_webhooks.deliver()
    _no_failed_events()
    assert sorted(CreditLot.objects.values_list("customer__external_id", "amount")) == [
        ("early", 500),
        ("early", 500),
        ("late", 200),
        ("late", 200),
    ]

    listed_versions = _versions(api, tenant_a)
    assert [(v["number"], v["latest"], v["features"]) for v in listed_versions] == [
        (1, False, {}),
        (2, False, V2),
        (3, True, V3),
    ]
    assert listed_versions[0]["changes"] == []
    assert listed_versions[1]["changes"] == [
        {"feature": key, "change": "added", "before": None, "after": V2[key]} for key in sorted(V2)
    ]
    assert listed_versions[2]["changes"] == [
        {"feature": "ai_credits", "change": "changed", "before": 500, "after": 200},
        {"feature": "api_calls", "change": "changed", "before": 1000, "after": 300},
        {"feature": "export", "change": "removed", "before": True, "after": None},
    ]
    assert [p["key"] for p in listed_versions[2]["prices"]] == ["pro-monthly", "pro-monthly-eur"]


def test_a_point_in_time_check_answers_the_version_the_subscriber_was_on(
    api, tenant_a, versioned, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, customer="early")
    assert api.patch("/api/v1/products/pro", {"features": V3}, key=tenant_a.key).status_code == 200
    at = timezone.now().isoformat().replace("+00:00", "Z")
    url = f"/api/v1/entitlements/check?customer=early&feature=export&as_of={at}"
    answer = api.get(url, key=tenant_a.key)
    assert (answer.status_code, answer.json()["allowed"]) == (200, True)


def test_a_draft_changes_nothing_until_published_and_a_stale_one_is_refused(
    api, tenant_a, versioned, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, customer="early")
    drafted = api.put(
        "/api/v1/products/pro/draft", {"features": V3, "note": "cheaper tier"}, key=tenant_a.key
    )
    assert drafted.status_code == 200, drafted.json()
    body = drafted.json()
    assert (body["based_on"], body["version"], body["stale"], body["note"]) == (2, 3, False, "cheaper tier")
    assert body["changes"] == [
        {"feature": "ai_credits", "change": "changed", "before": 500, "after": 200},
        {"feature": "api_calls", "change": "changed", "before": 1000, "after": 300},
        {"feature": "export", "change": "removed", "before": True, "after": None},
    ]
    # Nothing changed: the product, its public answers and a new subscriber are still on version 2.
    product = api.get("/api/v1/products/pro", key=tenant_a.key).json()
    assert (product["version"], product["features"]) == (2, V2)
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, customer="second")
    assert _limits(api, tenant_a, "second") == (1000, True, 500)

    bad = api.put("/api/v1/products/pro/draft", {"features": {"nope": 1}}, key=tenant_a.key)
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "unknown_feature")
    assert ProductDraft.objects.get().features == V3  # the saved draft is untouched

    wrong = api.post("/api/v1/products/pro/draft/publish", {"version": 4}, key=tenant_a.key)
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "version_mismatch")
    published = api.post("/api/v1/products/pro/draft/publish", {"version": 3}, key=tenant_a.key)
    assert published.status_code == 200, published.json()
    assert (published.json()["version"], published.json()["features"]) == (3, V3)
    assert ProductVersion.objects.get(product__key="pro", number=3).note == "cheaper tier"
    again = api.post("/api/v1/products/pro/draft/publish", {"version": 3}, key=tenant_a.key)
    assert (again.status_code, again.json()["version"]) == (200, 3)  # a retry: one version
    assert ProductVersion.objects.filter(product__key="pro").count() == 3
    assert _limits(api, tenant_a, "early") == (1000, True, 500)
    assert _limits(api, tenant_a, "second") == (1000, True, 500)

    # A draft made on version 3, then version 4 published directly: publishing the draft is refused.
    assert api.put("/api/v1/products/pro/draft", {"features": V2}, key=tenant_a.key).status_code == 200
    assert (
        api.patch("/api/v1/products/pro", {"features": {"api_calls": 10}}, key=tenant_a.key).status_code
        == 200
    )
    assert api.get("/api/v1/products/pro/draft", key=tenant_a.key).json()["stale"] is True
    stale = api.post("/api/v1/products/pro/draft/publish", {}, key=tenant_a.key)
    assert (stale.status_code, stale.json()["error"]["code"]) == (409, "draft_stale")
    product = Product.objects.get(key="pro", project=tenant_a.project)
    assert product.version == 4
    assert api.get("/api/v1/products/pro", key=tenant_a.key).json()["features"] == {"api_calls": 10}

    # Saved again on version 4 with what version 4 gives: nothing to publish.
    same = api.put("/api/v1/products/pro/draft", {"features": {"api_calls": 10}}, key=tenant_a.key)
    assert same.status_code == 200
    unchanged = api.post("/api/v1/products/pro/draft/publish", {}, key=tenant_a.key)
    assert (unchanged.status_code, unchanged.json()["error"]["code"]) == (400, "draft_unchanged")
    assert Product.objects.get(pk=product.pk).version == 4
    gone = api.delete("/api/v1/products/pro/draft", key=tenant_a.key)
    assert (gone.status_code, gone.json()["deleted"], gone.json()["features"]) == (
        200,
        True,
        {"api_calls": 10},
    )
    none = api.get("/api/v1/products/pro/draft", key=tenant_a.key)
    assert (none.status_code, none.json()["error"]["code"]) == (404, "no_draft")
    actions = list(
        AuditLogEntry.objects.filter(target_id=product.pk, action__startswith="product.draft").values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == [
        "product.draft_discarded",
        "product.draft_saved",
        "product.draft_saved",
        "product.draft_saved",
    ]


def test_another_projects_key_cannot_read_or_draft_a_products_versions(api, tenant_a, tenant_b, versioned):
    for method, path, body in (
        ("get", "/api/v1/products/pro/versions", None),
        ("put", "/api/v1/products/pro/draft", {"features": {}}),
        ("post", "/api/v1/products/pro/draft/publish", {}),
        ("delete", "/api/v1/products/pro/draft", None),
    ):
        pro = Product.objects.get(project=tenant_a.project, key="pro")
        for named in ("pro", pro.pk):
            url = path.replace("/pro/", f"/{named}/")
            answer = api.request(method.upper(), url, key=tenant_b.key, json_body=body)
            assert answer.status_code == 404, (url, answer.content)
    assert ProductDraft.objects.count() == 0
    assert Product.objects.get(project=tenant_a.project, key="pro").version == 2


def test_a_limit_made_unlimited_is_a_change_not_a_removal(api, tenant_a, versioned):
    """null is a value (unlimited): a change to it is told from a feature no longer given."""
    unlimited = {**V2, "api_calls": None}
    del unlimited["export"]
    assert api.patch("/api/v1/products/pro", {"features": unlimited}, key=tenant_a.key).status_code == 200
    assert _versions(api, tenant_a)[-1]["changes"] == [
        {"feature": "api_calls", "change": "changed", "before": 1000, "after": None},
        {"feature": "export", "change": "removed", "before": True, "after": None},
    ]


def test_a_draft_reprices_the_products_prices_when_published_and_subscribers_keep_their_stripe_price(
    api, tenant_a, versioned, stripe_emulator, stripe_webhooks, stripe_sdk
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, customer="early")
    old_stripe_price = SubscriptionItem.objects.get(
        subscription__customer__external_id="early"
    ).stripe_price_id
    bad = api.put("/api/v1/products/pro/draft", {"prices": {"pro-monthly": {"tiers": []}}}, key=tenant_a.key)
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "prices.pro-monthly")
    unknown = api.put(
        "/api/v1/products/pro/draft", {"prices": {"credits-1000": {"unit_amount": 1}}}, key=tenant_a.key
    )
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "unknown_price")
    negative = api.put(
        "/api/v1/products/pro/draft", {"prices": {"pro-monthly": {"unit_amount": -1}}}, key=tenant_a.key
    )
    assert (negative.status_code, negative.json()["error"]["param"]) == (
        400,
        "prices.pro-monthly.unit_amount",
    )
    assert not ProductDraft.objects.exists()  # nothing saved by a refused draft

    # Prices only: the features are the latest version's.
    drafted = api.put(
        "/api/v1/products/pro/draft", {"prices": {"pro-monthly": {"unit_amount": 3500}}}, key=tenant_a.key
    )
    assert drafted.status_code == 200, drafted.json()
    body = drafted.json()
    assert (body["features"], body["changes"], body["prices"]) == (
        V2,
        [],
        {"pro-monthly": {"unit_amount": 3500}},
    )
    assert body["price_changes"] == [
        {"price": "pro-monthly", "before": {"unit_amount": 3000}, "after": {"unit_amount": 3500}}
    ]
    assert api.get("/api/v1/prices/pro-monthly", key=tenant_a.key).json()["unit_amount"] == 3000  # not yet

    published = api.post("/api/v1/products/pro/draft/publish", {"version": 3}, key=tenant_a.key)
    assert published.status_code == 200, published.json()
    assert (published.json()["version"], published.json()["features"]) == (3, V2)
    price = api.get("/api/v1/prices/pro-monthly", key=tenant_a.key).json()
    assert price["unit_amount"] == 3500
    assert price["stripe_price_id"] not in (None, old_stripe_price)
    at_stripe = stripe_sdk().v1.prices.retrieve(price["stripe_price_id"])
    assert (at_stripe.unit_amount, at_stripe.lookup_key) == (3500, "alpha:pro-monthly")
    # The early subscriber keeps the Stripe price they bought, and version 2.
    item = SubscriptionItem.objects.get(subscription__customer__external_id="early")
    assert (item.stripe_price_id, item.product_version) == (old_stripe_price, 2)
    version = _versions(api, tenant_a)[-1]
    assert (version["number"], version["changes"]) == (3, [])
    assert [(p["key"], p["unit_amount"]) for p in version["prices"] if p["key"] == "pro-monthly"] == [
        ("pro-monthly", 3500)
    ]
    # A retry answers the product; the price was repriced once (one audit entry of the publish).
    again = api.post("/api/v1/products/pro/draft/publish", {"version": 3}, key=tenant_a.key)
    assert (again.status_code, again.json()["version"]) == (200, 3)
    assert (
        AuditLogEntry.objects.filter(action="price.updated", reason__startswith="version 3 of pro").count()
        == 1
    )

    # A draft with the prices' present terms and the same features publishes nothing.
    api.put(
        "/api/v1/products/pro/draft", {"prices": {"pro-monthly": {"unit_amount": 3500}}}, key=tenant_a.key
    )
    unchanged = api.post("/api/v1/products/pro/draft/publish", {}, key=tenant_a.key)
    assert (unchanged.status_code, unchanged.json()["error"]["code"]) == (400, "draft_unchanged")
    assert Product.objects.get(key="pro", project=tenant_a.project).version == 3


def test_a_publish_whose_stripe_answer_was_lost_is_finished_by_its_retry_with_one_stripe_price(
    api, tenant_a, versioned, stripe_emulator, stripe_sdk, settings
):
    """The draft reprices `pro-monthly`; the publish commits, then Stripe's answer to the new price is lost. The
    retry (same `version`) finds the price Stripe made and adopts it: one new Stripe price, not two."""
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    old = api.get("/api/v1/prices/pro-monthly", key=tenant_a.key).json()["stripe_price_id"]
    api.put(
        "/api/v1/products/pro/draft", {"prices": {"pro-monthly": {"unit_amount": 3300}}}, key=tenant_a.key
    )
    network = Network(stripe_emulator, lose={("POST", "v1/prices")})
    install_http_client(network)
    failed = api.post("/api/v1/products/pro/draft/publish", {"version": 3}, key=tenant_a.key)
    assert failed.status_code >= 500, failed.json()
    assert Product.objects.get(key="pro", project=tenant_a.project).version == 3  # published before Stripe
    assert api.get("/api/v1/prices/pro-monthly", key=tenant_a.key).json()["stripe_price_id"] is None

    network.lose.clear()
    retried = api.post("/api/v1/products/pro/draft/publish", {"version": 3}, key=tenant_a.key)
    assert (retried.status_code, retried.json()["version"]) == (200, 3)
    price = api.get("/api/v1/prices/pro-monthly", key=tenant_a.key).json()
    made = [
        p
        for p in stripe_sdk().v1.prices.list({"limit": 100}).data
        if p.metadata.to_dict().get("tollgate_price") == price["id"]
    ]
    assert sorted((p.id == old, p.unit_amount) for p in made) == [(False, 3300), (True, 3000)]
    assert price["stripe_price_id"] == next(p.id for p in made if p.id != old)


def test_a_price_given_new_terms_publishes_the_products_next_version_once(
    api, tenant_a, versioned, stripe_emulator, stripe_webhooks
):
    """`PATCH /prices/{key}` with a new amount publishes `pro`'s version 3 with it (and its new Stripe price);
    version 2 keeps the amount and the Stripe price its subscribers bought. The same request again publishes
    nothing; a change that is not a new amount (the trial) publishes nothing either."""
    old = ProductVersion.objects.get(product__key="pro", number=2)
    old_price = next(p for p in old.prices if p["key"] == "pro-monthly")
    answer = api.patch("/api/v1/prices/pro-monthly", {"unit_amount": 3500}, key=tenant_a.key)
    assert answer.status_code == 200, answer.json()
    new_stripe_price = answer.json()["stripe_price_id"]
    assert new_stripe_price != old_price["stripe_price_id"]
    product = api.get("/api/v1/products/pro", key=tenant_a.key).json()
    assert (product["version"], product["features"]) == (3, V2)
    frozen = ProductVersion.objects.get(product__key="pro", number=3)
    assert (frozen.note, frozen.features) == ("price pro-monthly repriced", V2)
    assert [(p["key"], p["unit_amount"], p["stripe_price_id"]) for p in frozen.prices] == [
        ("pro-monthly", 3500, new_stripe_price),
        (
            "pro-monthly-eur",
            2800,
            next(p for p in old.prices if p["key"] == "pro-monthly-eur")["stripe_price_id"],
        ),
    ]
    assert ProductVersion.objects.get(pk=old.pk).prices == old.prices  # version 2 is as it was published
    assert old_price["unit_amount"] == 3000
    entry = AuditLogEntry.objects.filter(action="price.updated").latest("created_at")
    assert entry.reason == "version 3 of pro published"
    # Again: the same terms, no new version; a trial is not a new price.
    assert api.patch("/api/v1/prices/pro-monthly", {"unit_amount": 3500}, key=tenant_a.key).status_code == 200
    assert api.patch("/api/v1/prices/pro-monthly", {"trial_days": 7}, key=tenant_a.key).status_code == 200
    assert ProductVersion.objects.filter(product__key="pro").count() == 3


def test_a_price_created_for_a_product_is_sold_by_its_latest_version_and_earlier_ones_stay_as_they_were(
    api, tenant_a, versioned, stripe_sdk
):
    """`pro` is at version 2; a new price for it joins version 2 (new checkouts buy it there) with the Stripe
    price Stripe made; version 1 stays as it was published; an inactive price joins nothing."""
    before = {v["number"]: v["prices"] for v in _versions(api, tenant_a)}
    made = api.post(
        "/api/v1/prices",
        {
            "key": "pro-weekly",
            "product": "pro",
            "currency": "usd",
            "unit_amount": 900,
            "type": "recurring",
            "interval": "week",
        },
        key=tenant_a.key,
    )
    assert made.status_code == 201, made.json()
    stripe_price = made.json()["stripe_price_id"]
    assert stripe_sdk().v1.prices.retrieve(stripe_price).unit_amount == 900
    after = {v["number"]: v["prices"] for v in _versions(api, tenant_a)}
    assert after[1] == before[1]
    assert after[2][:-1] == before[2]
    assert {k: after[2][-1][k] for k in ("key", "unit_amount", "stripe_price_id")} == {
        "key": "pro-weekly",
        "unit_amount": 900,
        "stripe_price_id": stripe_price,
    }
    inactive = api.post(
        "/api/v1/prices",
        {
            "key": "pro-daily",
            "product": "pro",
            "currency": "usd",
            "unit_amount": 200,
            "type": "recurring",
            "interval": "day",
            "active": False,
        },
        key=tenant_a.key,
    )
    assert inactive.status_code == 201, inactive.json()
    assert {v["number"]: v["prices"] for v in _versions(api, tenant_a)} == after


CAPPED = {"api_calls": {"limit": 1000, "overage": "allowed"}}
FIRST_CAP = {"amount": 5000, "currency": "usd", "at_cap": "block"}


def _account_cap(api, tenant, customer):
    answer = check(api, tenant.key, customer, "api_calls")["account_cap"]
    return answer and (answer["amount"], answer["currency"], answer["at_cap"], answer["set_by"])


@pytest.fixture
def capped_early(api, tenant_a, catalog, stripe_emulator, stripe_webhooks):
    """`pro` at version 2: `api_calls` with overage (`CAPPED`) and `FIRST_CAP`; `early` subscribed on it."""
    made = api.post(
        "/api/v1/features", {"key": "api_calls", "name": "API calls", "type": "metered"}, key=tenant_a.key
    )
    assert made.status_code == 201, made.json()
    answer = api.patch(
        "/api/v1/products/pro", {"features": CAPPED, "account_cap": FIRST_CAP}, key=tenant_a.key
    )
    assert (answer.status_code, answer.json()["version"]) == (200, 2), answer.json()
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, customer="early")
    _no_failed_events()


def test_a_change_of_the_account_cap_publishes_a_version_and_subscribers_keep_their_versions_cap(
    api, tenant_a, capped_early, stripe_emulator, stripe_webhooks
):
    first_cap = FIRST_CAP
    assert _account_cap(api, tenant_a, "early") == (5000, "usd", "block", "plan")

    # The account cap alone changes: version 3, with the same feature values.
    lowered = {"amount": 2000, "currency": "usd", "at_cap": "alert"}
    answer = api.patch("/api/v1/products/pro", {"account_cap": lowered}, key=tenant_a.key)
    assert answer.status_code == 200, answer.json()
    assert (answer.json()["version"], answer.json()["account_cap"], answer.json()["features"]) == (
        3,
        lowered,
        CAPPED,
    )
    # The early subscriber keeps version 2's cap; a new one gets version 3's.
    assert _account_cap(api, tenant_a, "early") == (5000, "usd", "block", "plan")
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, customer="late")
    _no_failed_events()
    assert _account_cap(api, tenant_a, "late") == (2000, "usd", "alert", "plan")
    assert _account_cap(api, tenant_a, "early") == (5000, "usd", "block", "plan")

    listed_versions = _versions(api, tenant_a)
    assert [(v["number"], v["account_cap"], v["note"]) for v in listed_versions] == [
        (1, None, None),
        (2, first_cap, "account cap changed"),
        (3, lowered, "account cap changed"),
    ]
    assert listed_versions[2]["changes"] == []
    # The same cap again publishes nothing.
    again = api.patch("/api/v1/products/pro", {"account_cap": lowered}, key=tenant_a.key)
    assert (again.status_code, again.json()["version"]) == (200, 3)
    assert ProductVersion.objects.filter(product__key="pro").count() == 3
    # Removing it is a version too: version 4 has none, and the early subscriber keeps version 2's.
    removed = api.patch("/api/v1/products/pro", {"account_cap": None}, key=tenant_a.key)
    assert (removed.json()["version"], removed.json()["account_cap"]) == (4, None)
    assert _account_cap(api, tenant_a, "early") == (5000, "usd", "block", "plan")
    assert _account_cap(api, tenant_a, "late") == (2000, "usd", "alert", "plan")
    # Moved to version 3, the early subscriber has its cap; moved back, version 2's again.
    early = SubscriptionItem.objects.get(subscription__customer__external_id="early").subscription_id
    for version, expected in ((3, (2000, "usd", "alert", "plan")), (2, (5000, "usd", "block", "plan"))):
        moved = api.post(
            "/api/v1/subscriptions/version_moves",
            {"product": "pro", "to_version": version, "subscriptions": [early]},
            key=tenant_a.key,
        )
        assert (moved.status_code, moved.json()["moved"]) == (200, 1), moved.json()
        stripe_webhooks.deliver()
        assert _account_cap(api, tenant_a, "early") == expected
    audits = AuditLogEntry.objects.filter(action="product.updated", target_id=answer.json()["id"])
    assert [(a.before["account_cap"], a.after["account_cap"]) for a in audits.order_by("created_at")][
        -2:
    ] == [
        (first_cap, lowered),
        (lowered, None),
    ]


def test_a_draft_gives_its_account_cap_when_published_and_nothing_before(
    api, tenant_a, capped_early, stripe_emulator, stripe_webhooks
):
    first_cap = FIRST_CAP

    # Left out, a draft's account cap is the latest version's.
    kept = api.put("/api/v1/products/pro/draft", {"features": CAPPED, "note": "same"}, key=tenant_a.key)
    assert (kept.status_code, kept.json()["account_cap"]) == (200, first_cap)
    unchanged = api.post("/api/v1/products/pro/draft/publish", {}, key=tenant_a.key)
    assert (unchanged.status_code, unchanged.json()["error"]["code"]) == (400, "draft_unchanged")
    bad = api.put(
        "/api/v1/products/pro/draft", {"account_cap": {"amount": -1, "currency": "usd"}}, key=tenant_a.key
    )
    assert (bad.status_code, bad.json()["error"]["code"], bad.json()["error"]["param"]) == (
        400,
        "invalid_parameter",
        "account_cap",
    )
    assert ProductDraft.objects.get().account_cap == first_cap  # the saved draft is untouched

    lowered = {"amount": 1500, "currency": "eur", "at_cap": "alert"}
    drafted = api.put(
        "/api/v1/products/pro/draft",
        {"account_cap": {**lowered, "currency": "EUR"}, "note": "lower"},
        key=tenant_a.key,
    )
    assert drafted.status_code == 200, drafted.json()
    body = drafted.json()
    assert (body["version"], body["account_cap"], body["features"], body["changes"]) == (
        3,
        lowered,
        CAPPED,
        [],
    )
    # Nothing changed for anyone until it is published.
    assert api.get("/api/v1/products/pro", key=tenant_a.key).json()["account_cap"] == first_cap
    assert _account_cap(api, tenant_a, "early") == (5000, "usd", "block", "plan")

    published = api.post("/api/v1/products/pro/draft/publish", {"version": 3}, key=tenant_a.key)
    assert published.status_code == 200, published.json()
    assert (published.json()["version"], published.json()["account_cap"]) == (3, lowered)
    assert ProductVersion.objects.get(product__key="pro", number=3).account_cap == lowered
    assert _account_cap(api, tenant_a, "early") == (5000, "usd", "block", "plan")
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, customer="late")
    _no_failed_events()
    assert _account_cap(api, tenant_a, "late") == (1500, "eur", "alert", "plan")

    # A draft removing the cap publishes a version without one.
    assert (
        api.put("/api/v1/products/pro/draft", {"account_cap": None}, key=tenant_a.key).json()["account_cap"]
        is None
    )
    removed = api.post("/api/v1/products/pro/draft/publish", {"version": 4}, key=tenant_a.key)
    assert (removed.json()["version"], removed.json()["account_cap"]) == (4, None)
    saved = AuditLogEntry.objects.filter(action="product.draft_saved").order_by("created_at")
    assert [entry.after["account_cap"] for entry in saved] == [first_cap, lowered, None]
