"""Adopting a Stripe account, continued: customers Stripe has on a test clock are adopted onto the project's row
of that clock (so advancing it through Tollgate renews their adopted subscriptions), and the project page's
adoption action is the `admin` role's (`billing.run_adoption`): refused, changing nothing, without it."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from billing.models import AdoptionRun, Invoice, Subscription
from billing.services.adoption import adoption_execute, adoption_start
from core.actors import Actor
from core.models import AuditLogEntry
from customers.models import Customer, TestClock
from tests.billing.adoption_seed import ACCOUNT_KEY
from tests.projects.factories import ApiKeyFactory, ProjectFactory
from webhooks.models import StripeEvent


@pytest.fixture
def project(db: None) -> Any:
    return ProjectFactory(slug="adopter", stripe_secret_key=ACCOUNT_KEY)


def _z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


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


def test_customers_on_a_test_clock_are_adopted_onto_it_and_advancing_it_renews_them(
    project, api, stripe_sdk, stripe_webhooks
):
    stripe_webhooks.register(project)
    sdk = stripe_sdk(ACCOUNT_KEY)
    product = sdk.v1.products.create({"name": "Pro"}).id
    price = sdk.v1.prices.create(
        {"product": product, "currency": "usd", "unit_amount": 2900, "recurring": {"interval": "month"}}
    ).id
    start = int(datetime.now(UTC).timestamp())
    clock = sdk.v1.test_helpers.test_clocks.create({"frozen_time": start, "name": "Renewals"})
    on_clock = sdk.v1.customers.create({"metadata": {"user_id": "user-1"}, "test_clock": clock.id}).id
    off_clock = sdk.v1.customers.create({"metadata": {"user_id": "user-2"}}).id
    subscriptions = {
        customer: sdk.v1.subscriptions.create(
            {"customer": customer, "items": [{"price": price}], "default_payment_method": "pm_card_visa"}
        )
        for customer in (on_clock, off_clock)
    }
    mapping = {"products": [{"stripe_product": product, "key": "pro"}]}

    dry = _adopt(project, mapping, dry_run=True)
    assert dry.report["counts"]["test_clocks"] == {"created": 1}
    assert f"create test clock {clock.id}" in dry.report["changes"]
    assert not TestClock.objects.exists()

    run = _adopt(project, mapping)
    assert (run.status, run.report["counts"]["test_clocks"]) == ("completed", {"created": 1})
    row = TestClock.objects.get(project=project)
    assert (row.stripe_test_clock_id, row.name, row.status, row.frozen_time) == (
        clock.id,
        "Renewals",
        "ready",
        datetime.fromtimestamp(start, tz=UTC),
    )
    assert dict(Customer.objects.filter(project=project).values_list("external_id", "test_clock")) == {
        "user-1": row.pk,
        "user-2": None,
    }
    assert AuditLogEntry.objects.filter(action="test_clock.adopted", target_id=row.pk).count() == 1
    stripe_webhooks.deliver()  # the account's events from before the adoption point: harmless

    # The clock, advanced through Tollgate past the period end, renews the adopted subscription on it only.
    key = ApiKeyFactory(project=project).secret
    customer = api.get("/api/v1/customers/user-1", key=key).json()
    assert customer["test_clock"] == row.pk
    period_end = subscriptions[on_clock]["items"].data[0].current_period_end
    target = datetime.fromtimestamp(period_end, tz=UTC) + timedelta(hours=1)
    advanced = api.post(f"/api/v1/test_clocks/{row.pk}/advance", {"frozen_time": _z(target)}, key=key)
    assert advanced.status_code == 200, advanced.json()
    stripe_webhooks.deliver()
    assert not StripeEvent.objects.filter(status="failed").exists()

    renewed = Subscription.objects.get(stripe_subscription_id=subscriptions[on_clock].id)
    assert (renewed.status, renewed.current_period_start) == (
        "active",
        datetime.fromtimestamp(period_end, tz=UTC),
    )
    assert sorted(
        Invoice.objects.filter(customer__external_id="user-1").values_list(
            "billing_reason", "status", "total"
        )
    ) == [("subscription_create", "paid", 2900), ("subscription_cycle", "paid", 2900)]
    assert list(
        Invoice.objects.filter(customer__external_id="user-2").values_list(
            "billing_reason", "status", "total"
        )
    ) == [("subscription_create", "paid", 2900)]
    assert Subscription.objects.get(
        stripe_subscription_id=subscriptions[off_clock].id
    ).current_period_start == (
        datetime.fromtimestamp(subscriptions[off_clock]["items"].data[0].current_period_start, tz=UTC)
    )

    # Again: the clock is the one row, its customers stay on it, nothing to do.
    again = _adopt(project, mapping)
    assert again.report["counts"]["test_clocks"] == {"unchanged": 1}
    assert again.report["counts"]["customers"] == {"unchanged": 2}
    assert TestClock.objects.count() == 1


def test_a_customer_adopted_before_clocks_were_adopted_is_put_on_its_clock(project, stripe_sdk):
    sdk = stripe_sdk(ACCOUNT_KEY)
    clock = sdk.v1.test_helpers.test_clocks.create({"frozen_time": int(datetime.now(UTC).timestamp())})
    stripe_customer = sdk.v1.customers.create({"metadata": {"user_id": "user-1"}, "test_clock": clock.id})
    # As an adoption before this one left it: linked to its Stripe customer, on no clock.
    Customer.objects.create(project=project, external_id="user-1", stripe_customer_id=stripe_customer.id)

    run = _adopt(project, {})

    assert run.report["counts"]["customers"] == {"updated": 1}
    assert f"put on its test clock customer user-1 ← {stripe_customer.id}" in run.report["changes"]
    row = TestClock.objects.get(project=project, stripe_test_clock_id=clock.id)
    assert Customer.objects.get(project=project).test_clock_id == row.pk
    assert _adopt(project, {}).report["counts"]["customers"] == {"unchanged": 1}


def _operator(role: str | None) -> Client:
    user = User.objects.create_user(f"{role or 'nobody'}-op", password="pw", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


ADOPT_FORM = {
    "action": "adopt_stripe_account",
    "apply": "1",
    "customer_metadata": "user_id",
    "mapping": "products: []\n",
    "dry_run": "on",
    "reason": "moving onto Tollgate",
}


def test_only_the_admin_role_holds_the_adoption_permission(db):
    holders = Group.objects.filter(
        permissions__codename="run_adoption", permissions__content_type__app_label="billing"
    )
    assert list(holders.values_list("name", flat=True)) == ["admin"]


@pytest.mark.parametrize("role", ["support", "finance", None])
def test_the_adoption_action_is_refused_without_the_permission_and_changes_nothing(project, role):
    client = _operator(role)
    page = client.get("/admin/projects/project/")
    if role:  # support and finance read the projects, without the action
        assert page.status_code == 200
        assert b'value="adopt_stripe_account"' not in page.content
    response = client.post("/admin/projects/project/", {**ADOPT_FORM, "_selected_action": [project.pk]})
    assert response.status_code in (200, 302, 403)
    assert not AdoptionRun.objects.exists()
    assert not AuditLogEntry.objects.filter(action__startswith="adoption.").exists()


def test_the_admin_role_runs_the_adoption_action_with_a_reason(
    project, stripe_sdk, django_capture_on_commit_callbacks
):
    sdk = stripe_sdk(ACCOUNT_KEY)
    stripe_customer = sdk.v1.customers.create({"metadata": {"user_id": "user-1"}})
    client = _operator("admin")
    page = client.get("/admin/projects/project/")
    assert b'value="adopt_stripe_account"' in page.content

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/projects/project/", {**ADOPT_FORM, "_selected_action": [project.pk]})

    assert response.status_code == 302
    run = AdoptionRun.objects.get()
    assert (run.project_id, run.dry_run, run.status, run.customer_key) == (
        project.pk,
        True,
        "completed",
        {"metadata": "user_id"},
    )
    assert run.report["counts"]["customers"] == {"created": 1}
    assert not Customer.objects.exists()  # a dry run
    requested = AuditLogEntry.objects.get(action="adoption.requested")
    assert (requested.actor_repr, requested.reason) == ("admin-op", "moving onto Tollgate")
    assert stripe_customer.id in " ".join(run.report["changes"])
