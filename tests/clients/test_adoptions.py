"""The platform namespace's adoptions on the live server: a dry run and a run of an existing Stripe account
started through the client, read back with their reports; a project key, a bad mapping and another project's run
are refused as the client's errors, and nothing is recorded for them."""

import pytest
from tollgate_client import InvalidRequestError, NotFoundError, PermissionDeniedError, Tollgate
from tollgate_client.types import AdoptionPoint, AdoptionRun

from billing.models import AdoptionRun as AdoptionRunRow
from billing.models import Subscription
from customers.models import Customer
from tests.billing.adoption_seed import ACCOUNT_KEY
from tests.projects.factories import ProjectFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_platform_adopts_a_stripe_account_through_the_client(
    live_server, platform_key, tollgate, stripe_sdk
):
    project = ProjectFactory(slug="adopter", stripe_secret_key=ACCOUNT_KEY)
    sdk = stripe_sdk(ACCOUNT_KEY)
    product = sdk.v1.products.create({"name": "Pro"}).id
    price = sdk.v1.prices.create(
        {"product": product, "currency": "usd", "unit_amount": 2900, "recurring": {"interval": "month"}}
    ).id
    customer = sdk.v1.customers.create({"metadata": {"user_id": "user-1"}}).id
    subscription = sdk.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": price}], "default_payment_method": "pm_card_visa"}
    ).id
    mapping = {
        "features": [{"key": "projects", "name": "Projects", "type": "allocation"}],
        "products": [{"stripe_product": product, "key": "pro", "features": {"projects": 10}}],
    }

    with Tollgate(platform_key, live_server.url, timeout=30) as platform:
        dry = platform.projects.adoptions.create(
            "adopter", customer_key={"metadata": "user_id"}, mapping=mapping, dry_run=True
        )
        assert isinstance(dry, AdoptionRun)
        assert (dry.object, dry.project, dry.status, dry.dry_run) == (
            "adoption_run",
            project.pk,
            "pending",
            True,
        )
        assert dry.customer_key == {"metadata": "user_id"}
        read = platform.projects.adoptions.retrieve("adopter", dry.id)
        assert (read.status, read.error) == ("completed", "")
        assert read.report["counts"]["subscriptions"] == {"created": 1}
        assert read.report["changes"][:2] == [
            "create feature projects (allocation)",
            f"create product pro from {product}",
        ]
        assert isinstance(read.adoption_point, AdoptionPoint)
        assert read.adoption_point.newest_event == AdoptionRunRow.objects.get(pk=dry.id).newest_event_id
        assert not Subscription.objects.exists()

        run = platform.projects.adoptions.create(
            project.pk, customer_key={"metadata": "user_id"}, mapping=mapping
        )
        done = platform.projects.adoptions.retrieve(project.pk, run.id)
        assert (done.status, done.dry_run, done.report["counts"]["subscriptions"]) == (
            "completed",
            False,
            {"created": 1},
        )
        assert done.stripe_reads == done.report["stripe_reads"] > 0
        assert list(Subscription.objects.values_list("stripe_subscription_id", "customer__external_id")) == [
            (subscription, "user-1")
        ]

        with pytest.raises(InvalidRequestError) as bad:
            platform.projects.adoptions.create("adopter", customer_key={}, mapping=mapping)
        assert bad.value.code == "invalid_mapping"
        with pytest.raises(NotFoundError):
            platform.projects.adoptions.retrieve("alpha", run.id)  # tenant A's project has no such run

    with pytest.raises(PermissionDeniedError):
        tollgate.projects.adoptions.create("adopter", customer_key={"field": "email"}, mapping={})
    assert AdoptionRunRow.objects.count() == 2
    assert Customer.objects.filter(project=project).count() == 1
