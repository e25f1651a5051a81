"""Adopting a Stripe account's prices beyond per-unit licensed ones: a metered price (on a billing meter the
mapping names a metered feature for) becomes a metered catalog price of that feature, the feature reports its
usage to that meter, and the adopted subscription's renewal bills it; a tiered price keeps its tiers; what the
catalog cannot hold as it is (a fractional amount, a meter the mapping does not name) is skipped and reported,
per subscription, with what to do."""

from typing import Any

import pytest

from billing.models import AdoptionRun, Drift, Invoice, Subscription
from billing.services.adoption import adoption_execute, adoption_start
from billing.services.reconcile import reconcile
from catalog.models import Feature, Price
from core.actors import Actor
from entitlements.models import UsageEvent
from tests.billing.adoption_seed import ACCOUNT_KEY
from tests.projects.factories import ApiKeyFactory, ProjectFactory

MONTH = {"interval": "month"}


@pytest.fixture
def project(db: None) -> Any:
    return ProjectFactory(slug="adopter", stripe_secret_key=ACCOUNT_KEY)


def _adopt(project: Any, mapping: Any, *, dry_run: bool = False) -> AdoptionRun:
    run = adoption_start(
        project=project,
        actor=Actor.system("test"),
        customer_key={"metadata": "user_id"},
        mapping=mapping,
        dry_run=dry_run,
        queue=False,
    )
    return adoption_execute(run_id=run.pk)


def _meter(sdk: Any, event_name: str, formula: str = "sum") -> str:
    return sdk.v1.billing.meters.create(
        {
            "display_name": event_name,
            "event_name": event_name,
            "default_aggregation": {"formula": formula},
            "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
            "value_settings": {"event_payload_key": "value"},
        }
    ).id


@pytest.fixture
def account(project, stripe_sdk) -> dict[str, Any]:
    sdk = stripe_sdk(ACCOUNT_KEY)
    meters = {"requests": _meter(sdk, "api_requests"), "exports": _meter(sdk, "exports")}
    product = sdk.v1.products.create({"name": "API"}).id
    prices = {
        "base": sdk.v1.prices.create(
            {"product": product, "currency": "usd", "unit_amount": 2000, "recurring": MONTH}
        ).id,
        "requests": sdk.v1.prices.create(
            {
                "product": product,
                "currency": "usd",
                "unit_amount": 3,
                "recurring": {**MONTH, "usage_type": "metered", "meter": meters["requests"]},
            }
        ).id,
        "exports": sdk.v1.prices.create(  # its meter is not named by the mapping
            {
                "product": product,
                "currency": "usd",
                "unit_amount": 10,
                "recurring": {**MONTH, "usage_type": "metered", "meter": meters["exports"]},
            }
        ).id,
        "seats": sdk.v1.prices.create(
            {
                "product": product,
                "currency": "usd",
                "recurring": MONTH,
                "billing_scheme": "tiered",
                "tiers_mode": "graduated",
                "tiers": [
                    {"up_to": 5, "unit_amount": 1000},
                    {"up_to": "inf", "unit_amount": 800, "flat_amount": 500},
                ],
            }
        ).id,
        "fraction": sdk.v1.prices.create(
            {"product": product, "currency": "usd", "unit_amount_decimal": "0.5", "recurring": MONTH}
        ).id,
        "packs": sdk.v1.prices.create(  # billed per started pack of 100
            {
                "product": product,
                "currency": "usd",
                "unit_amount": 900,
                "recurring": MONTH,
                "transform_quantity": {"divide_by": 100, "round": "up"},
            }
        ).id,
    }
    subscriptions = {}
    for user, items in (
        ("user-1", [{"price": prices["base"]}, {"price": prices["requests"]}]),
        ("user-2", [{"price": prices["seats"], "quantity": 7}]),
        ("user-3", [{"price": prices["fraction"], "quantity": 100}]),
        ("user-4", [{"price": prices["base"]}, {"price": prices["exports"]}]),
    ):
        customer = sdk.v1.customers.create({"metadata": {"user_id": user}}).id
        subscriptions[user] = sdk.v1.subscriptions.create(
            {"customer": customer, "items": items, "default_payment_method": "pm_card_visa"}
        ).id
    mapping = {
        "features": [
            {"key": "api_requests", "name": "API requests", "type": "metered"},
            {"key": "seats", "name": "Seats", "type": "allocation"},
        ],
        "products": [{"stripe_product": product, "key": "api", "features": {"api_requests": None}}],
        "meters": {meters["requests"]: "api_requests"},
    }
    return {"meters": meters, "prices": prices, "subscriptions": subscriptions, "mapping": mapping}


PACKS = (
    "transform_quantity (units billed in packages): the catalog bills every unit; move its subscriptions to a "
    "per-unit or tiered price at Stripe and adopt again"
)
FRACTION = (
    "a fractional unit amount (0.5 minor units): the catalog's amounts are whole minor units; replace the "
    "price at Stripe and adopt again"
)


def test_metered_and_tiered_prices_are_adopted_and_the_rest_reported_with_what_to_do(
    project, account, stripe_emulator, stripe_sdk, stripe_webhooks, api
):
    stripe_webhooks.register(project)
    prices, meters, subscriptions = account["prices"], account["meters"], account["subscriptions"]
    exports = (
        f"metered, billing meter {meters['exports']}: name the metered feature it counts in the mapping's "
        f"`meters` ({meters['exports']}: <feature key>) and adopt again"
    )

    dry = _adopt(project, account["mapping"], dry_run=True)
    assert dry.report["counts"]["prices"] == {"created": 3, "skipped": 3}
    assert dry.report["counts"]["meters"] == {"created": 1}
    assert not Price.objects.exists()

    run = _adopt(project, account["mapping"])
    assert (run.status, run.error) == ("completed", "")
    assert run.report["counts"]["prices"] == {"created": 3, "skipped": 3}
    assert run.report["counts"]["meters"] == {"created": 1}
    assert f"link feature api_requests to billing meter {meters['requests']}" in run.report["changes"]
    assert sorted(run.report["skipped_prices"], key=lambda p: p["id"]) == sorted(
        [
            {"id": prices["fraction"], "reason": FRACTION},
            {"id": prices["exports"], "reason": exports},
            {"id": prices["packs"], "reason": PACKS},
        ],
        key=lambda p: p["id"],
    )
    assert sorted(run.report["subscription_items_not_adopted"], key=lambda n: n["subscription"]) == sorted(
        [
            {
                "subscription": subscriptions["user-3"],
                "adopted": False,
                "prices": [prices["fraction"]],
                "reasons": {prices["fraction"]: FRACTION},
            },
            {
                "subscription": subscriptions["user-4"],
                "adopted": True,
                "prices": [prices["exports"]],
                "reasons": {prices["exports"]: exports},
            },
        ],
        key=lambda n: n["subscription"],
    )
    assert run.report["unmapped_subscriptions"] == [subscriptions["user-3"]]

    requests = Feature.objects.get(project=project, key="api_requests")
    assert (requests.stripe_meter_id, requests.stripe_meter_event_name) == (
        meters["requests"],
        "api_requests",
    )
    adopted = {
        p.stripe_price_id: (p.billing_scheme, p.unit_amount, p.tiers_mode, p.tiers, p.usage_type, p.meter_id)
        for p in Price.objects.filter(project=project)
    }
    assert adopted == {
        prices["base"]: ("per_unit", 2000, "", [], "licensed", None),
        prices["requests"]: ("per_unit", 3, "", [], "metered", requests.pk),
        prices["seats"]: (
            "tiered",
            None,
            "graduated",
            [
                {"up_to": 5, "unit_amount": 1000, "flat_amount": None},
                {"up_to": "inf", "unit_amount": 800, "flat_amount": 500},
            ],
            "licensed",
            None,
        ),
    }
    items = {
        s.customer.external_id: sorted(
            (i.price.stripe_price_id, i.quantity, i.usage_type) for i in s.items.all()
        )
        for s in Subscription.objects.filter(project=project).select_related("customer")
    }
    assert items == {
        "user-1": sorted([(prices["base"], 1, "licensed"), (prices["requests"], None, "metered")]),
        "user-2": [(prices["seats"], 7, "licensed")],
        "user-4": [(prices["base"], 1, "licensed")],
    }
    # The tiered subscription's first invoice, as Stripe billed it: 5 × 1000 + 2 × 800 + 500.
    assert Invoice.objects.get(customer__external_id="user-2").total == 7100

    # What reconciliation still finds is the subscription reported as not adopted.
    reconcile(project=project)
    assert list(Drift.objects.values_list("kind", "stripe_id")) == [
        ("missing_locally", subscriptions["user-3"])
    ]
    stripe_webhooks.deliver()  # the account's past events: harmless

    # Usage of the adopted metered item is reported to the adopted meter and billed at renewal.
    key = ApiKeyFactory(project=project).secret
    events = [
        {"id": "r1", "customer": "user-1", "feature": "api_requests", "quantity": 40},
        {"id": "r2", "customer": "user-1", "feature": "api_requests", "quantity": 2},
    ]
    assert api.post("/api/v1/usage/batch", {"events": events}, key=key).json() == {
        "accepted": 2,
        "duplicates": 0,
    }
    assert set(UsageEvent.objects.values_list("meter_status", flat=True)) == {"reported"}
    usage = api.get("/api/v1/usage?customer=user-1&feature=api_requests", key=key).json()
    assert (usage["quantity"], usage["billed_quantity"], usage["price"], usage["amount_due_estimate"]) == (
        42,
        42,
        Price.objects.get(stripe_price_id=prices["requests"]).key,
        42 * 3,
    )
    sdk = stripe_sdk(ACCOUNT_KEY)
    live = sdk.v1.subscriptions.retrieve(subscriptions["user-1"])
    stripe_emulator.advance(live["items"].data[0].current_period_end - stripe_emulator.clock.now() + 60)
    stripe_webhooks.deliver()
    renewal = Invoice.objects.get(customer__external_id="user-1", billing_reason="subscription_cycle")
    assert sorted(
        (line["stripe_price_id"], line["quantity"], line["amount"]) for line in renewal.lines
    ) == sorted([(prices["base"], 1, 2000), (prices["requests"], 42, 126)])

    again = _adopt(project, account["mapping"])
    assert again.report["nothing_to_do"] is True
    assert again.report["counts"]["meters"] == {"unchanged": 1}
    assert again.report["counts"]["prices"] == {"skipped": 3, "unchanged": 3}


def test_a_meter_tollgate_cannot_report_to_is_not_adopted(project, stripe_sdk):
    sdk = stripe_sdk(ACCOUNT_KEY)
    counted = _meter(sdk, "logins", formula="count")
    product = sdk.v1.products.create({"name": "Logins"}).id
    price = sdk.v1.prices.create(
        {
            "product": product,
            "currency": "usd",
            "unit_amount": 1,
            "recurring": {**MONTH, "usage_type": "metered", "meter": counted},
        }
    ).id
    mapping = {
        "features": [{"key": "logins", "name": "Logins", "type": "metered"}],
        "products": [{"stripe_product": product, "key": "logins"}],
        "meters": {counted: "logins"},
    }

    run = _adopt(project, mapping)

    assert run.report["skipped_prices"] == [
        {
            "id": price,
            "reason": f"its billing meter {counted} aggregates by 'count'; Tollgate's usage is summed",
        }
    ]
    assert Feature.objects.get(project=project, key="logins").stripe_meter_id == ""
    assert not Price.objects.exists()


def test_a_meter_mapped_to_a_feature_that_is_not_metered_fails_the_run(project, account):
    mapping = {**account["mapping"], "meters": {account["meters"]["requests"]: "seats"}}
    run = _adopt(project, mapping)
    assert run.status == "failed"
    assert run.error == (
        f"invalid_mapping: mapping.meters.{account['meters']['requests']}: 'seats' is not a metered feature of "
        "the project or the mapping."
    )
    assert not Price.objects.filter(usage_type="metered").exists()
