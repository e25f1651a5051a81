"""Adopting a Stripe account with over a thousand subscriptions of mixed shapes (active, trialing, past_due,
canceled; several items, quantities, discounts), seeded through the SDK on the emulator: after the adoption
`reconcile` finds no drift, every customer's subscriptions are mirrored with the statuses and items Stripe has,
the entitlements of a sample are what those subscriptions imply, and the Stripe reads stay within the read limit
over the time the adoption took. PostgreSQL only: on SQLite this takes several minutes."""

import math
import random
import time
from collections import Counter

import pytest

from billing.models import Drift, Subscription, SubscriptionItem
from billing.services.reconcile import reconcile
from customers.models import Customer
from entitlements.models import SubscriptionSource
from stripe_gateway.read_limit import STRIPE_READS_PER_SECOND
from tests.billing.adoption_seed import ACCOUNT_KEY, seed_account
from tests.billing.test_adoption import Requests, _adopt, implied_entitlements
from tests.projects.factories import ApiKeyFactory, ProjectFactory

SUBSCRIPTIONS = 1190  # a seventh on the unmapped product, of customers without the key: 1,020 adopted


@pytest.mark.postgres
def test_adopting_over_a_thousand_subscriptions(db, stripe_sdk, stripe_emulator, api, capsys):
    project = ProjectFactory(slug="big-adopter", stripe_secret_key=ACCOUNT_KEY)
    seeded = seed_account(
        stripe_sdk(ACCOUNT_KEY), stripe_emulator, subscriptions=SUBSCRIPTIONS, legacy_without_key=True
    )
    requests = Requests(stripe_emulator)

    run = _adopt(project, seeded)

    assert (run.status, run.error) == ("completed", "")
    seconds, reads = run.report["seconds"], run.stripe_reads
    adopted = {sid: shape for sid, shape in seeded.subscriptions.items() if shape["items"] != ("legacy",)}
    assert len(adopted) >= 1000
    assert run.report["counts"]["subscriptions"] == {
        "created": len(adopted),
        "customer_not_adopted": SUBSCRIPTIONS - len(adopted),
    }
    # Reads: every one the emulator answered was counted, none written, and at most the limit per second.
    assert requests.writes == 0
    assert requests.counts["GET"] == reads
    assert reads <= STRIPE_READS_PER_SECOND * (math.floor(seconds) + 1)  # the limiter's window is one second

    # Every adopted subscription as Stripe has it; the entitlements' facts for every one.
    mirrored = dict(
        Subscription.objects.filter(project=project).values_list("stripe_subscription_id", "status")
    )
    assert mirrored == {sid: shape["status"] for sid, shape in adopted.items()}
    assert Counter(
        SubscriptionSource.objects.filter(project=project).values_list("status", flat=True)
    ) == Counter(shape["status"] for shape in adopted.values())
    assert SubscriptionItem.objects.filter(project=project).count() == sum(
        len(shape["items"]) for shape in adopted.values()
    )
    assert Customer.objects.filter(project=project).count() == len(adopted)

    started = time.monotonic()
    recon = reconcile(project=project)
    reconcile_seconds = round(time.monotonic() - started, 1)
    assert (recon.status, recon.drift_count) == ("completed", 0), list(
        Drift.objects.values_list("object_type", "stripe_id", "field")[:20]
    )

    key = ApiKeyFactory(project=project).secret
    for shape in random.Random(7).sample(sorted(adopted.values(), key=lambda s: s["user"]), 60):
        body = api.get("/api/v1/entitlements", key=key, json_body={"customer": shape["user"]}).json()
        answers = {
            row["feature"]: (row["enabled"], row["value"], row["limit"]) for row in body["entitlements"]
        }
        assert answers == implied_entitlements(shape), shape

    with capsys.disabled():
        print(  # noqa: T201 (the figures the issue asks for, in -s output)
            f"\nadoption: {len(adopted)} subscriptions adopted ({SUBSCRIPTIONS} read) in {seconds} s, "
            f"{reads} Stripe reads (limit {STRIPE_READS_PER_SECOND}/s); reconcile: {recon.checked} checked, "
            f"{recon.drift_count} drift, {reconcile_seconds} s"
        )
