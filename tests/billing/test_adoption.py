"""Adopting an existing Stripe account (`stripe_adopt`, `POST /projects/{id}/adoptions`, the project page): a dry
run reads only, a run mirrors what the mapping and the customer key name through the webhooks' own mirrors (so
`reconcile` then finds no drift), a second run changes nothing, and Stripe's events older than the adoption
point change nothing."""

import io
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from billing.models import (
    AdoptionRun,
    Coupon,
    Drift,
    Invoice,
    Payment,
    PromotionCode,
    Subscription,
    SubscriptionItem,
)
from billing.services.adoption import adoption_execute, adoption_start
from billing.services.reconcile import reconcile
from catalog.models import Feature, Price, Product, ProductFeature
from core.actors import Actor
from core.errors import Conflict
from core.models import AuditLogEntry
from customers.models import Customer
from customers.services.customers import customer_ensure_stripe
from entitlements.models import SubscriptionSource
from events.models import Event
from tests.billing.adoption_seed import ACCOUNT_KEY, Seeded, seed_account
from tests.projects.factories import ApiKeyFactory, ProjectFactory

TABLES = (
    Customer,
    Feature,
    Product,
    ProductFeature,
    Price,
    Coupon,
    PromotionCode,
    Subscription,
    SubscriptionItem,
    Invoice,
    Payment,
    SubscriptionSource,
    Event,
)


class Requests:
    """Counts the requests the emulator answers, by method (a write is anything but GET)."""

    def __init__(self, emulator: Any) -> None:
        self.counts: Counter[str] = Counter()
        self.paths: list[tuple[str, str]] = []
        handle = emulator.handle

        def counted(method: str, path: str, **kwargs: Any) -> Any:
            self.counts[method.upper()] += 1
            self.paths.append((method, path))
            return handle(method, path, **kwargs)

        emulator.handle = counted

    def reset(self) -> None:
        self.counts.clear()

    @property
    def writes(self) -> int:
        return sum(n for method, n in self.counts.items() if method != "GET")


def _rows() -> dict[str, int]:
    counts = {model.__name__: model.objects.count() for model in TABLES}
    counts["audit (other than adoption)"] = AuditLogEntry.objects.exclude(
        action__startswith="adoption."
    ).count()
    return counts


@pytest.fixture
def project(db: None) -> Any:
    return ProjectFactory(slug="adopter", stripe_secret_key=ACCOUNT_KEY)


@pytest.fixture
def seeded(project: Any, stripe_sdk: Any, stripe_emulator: Any) -> Seeded:
    return seed_account(stripe_sdk(ACCOUNT_KEY), stripe_emulator, subscriptions=14)


def _adopt(project: Any, seeded: Seeded, *, dry_run: bool = False, mapping: Any = None) -> AdoptionRun:
    run = adoption_start(
        project=project,
        actor=Actor.system("test"),
        customer_key={"metadata": "user_id"},
        mapping=seeded.mapping if mapping is None else mapping,
        dry_run=dry_run,
        queue=False,
    )
    return adoption_execute(run_id=run.pk)


def implied_entitlements(shape: dict[str, Any]) -> dict[str, tuple[Any, Any, Any]]:
    """What a seeded subscription gives (the mapping's values; an allocation adds up over the products, sso is
    on when one gives it): nothing once canceled, nor from the product the mapping leaves out."""
    values = {"pro": (10, False), "team": (50, True), "seats": (1, False)}
    live = shape["status"] in ("active", "trialing", "past_due")  # past_due: within the grace period
    granted = [values[name] for name in shape["items"] if name in values] if live else []
    projects = sum(limit for limit, _ in granted)
    sso = any(flag for _, flag in granted)
    return {"projects": (bool(granted), projects, projects), "sso": (sso, sso, None)}


def _expected_subscriptions(seeded: Seeded) -> dict[str, dict[str, Any]]:
    """The seeded subscriptions the mapping covers (every one but those of the unmapped product alone)."""
    return {sid: shape for sid, shape in seeded.subscriptions.items() if shape["items"] != ("legacy",)}


def test_dry_run_reads_only_and_reports_the_diff(project, seeded, stripe_emulator):
    requests = Requests(stripe_emulator)
    before = _rows()

    run = _adopt(project, seeded, dry_run=True)

    assert (run.status, run.dry_run, run.error) == ("completed", True, "")
    assert requests.writes == 0, requests.paths
    assert requests.counts["GET"] == run.stripe_reads == run.report["stripe_reads"]
    assert _rows() == before  # nothing written but the run's own record
    counts = run.report["counts"]
    assert counts["customers"] == {"created": 14, "without_key": 2}
    assert counts["products"] == {"created": 3, "unmapped": 1}
    assert counts["prices"] == {"created": 3, "unmapped": 1}
    assert counts["features"] == {"created": 2}
    assert counts["coupons"] == {"created": 1}
    assert counts["promotion_codes"] == {"created": 1}
    assert counts["subscriptions"] == {"created": 12, "unmapped": 2}
    assert counts["subscriptions_by_status"] == {"active": 6, "canceled": 2, "past_due": 2, "trialing": 2}
    assert run.report["unmapped_products"] == [{"id": seeded.products["legacy"], "name": "Legacy"}]
    assert sorted(run.report["customers_without_key"]) == sorted(seeded.customers_without_key)
    assert "subscription_schedules" not in run.report  # the API has schedules: nothing to say it lacks them
    assert f"create product pro from {seeded.products['pro']}" in run.report["changes"]
    assert run.report["nothing_to_do"] is False


def test_adoption_mirrors_the_account_and_a_second_run_changes_nothing(project, seeded, stripe_emulator):
    requests = Requests(stripe_emulator)
    run = _adopt(project, seeded)

    assert (run.status, run.error) == ("completed", "")
    assert requests.writes == 0  # nothing is written to the tenant's Stripe account
    expected = _expected_subscriptions(seeded)
    mirrored = {s.stripe_subscription_id: s for s in Subscription.objects.filter(project=project)}
    assert set(mirrored) == set(expected)
    for stripe_id, shape in expected.items():
        subscription = mirrored[stripe_id]
        assert subscription.status == shape["status"], stripe_id
        assert subscription.customer.external_id == shape["user"]
        items = sorted(subscription.items.values_list("product__key", "quantity"))
        assert items == sorted(
            (name, 1 if name == "team" else shape["quantity"]) for name in shape["items"]
        ), stripe_id
        assert (subscription.discount or {}).get("coupon") == (seeded.coupon if shape["discounted"] else None)
    assert Customer.objects.filter(project=project).count() == 14
    assert set(Product.objects.filter(project=project).values_list("key", "stripe_product_id")) == {
        ("pro", seeded.products["pro"]),
        ("team", seeded.products["team"]),
        ("seats", seeded.products["seats"]),
    }
    assert Price.objects.get(stripe_price_id=seeded.prices["pro"]).key == "pro_monthly"  # its lookup key
    assert Price.objects.get(stripe_price_id=seeded.prices["team"]).key == seeded.prices["team"]
    assert Coupon.objects.get(project=project).stripe_coupon_id == seeded.coupon
    assert PromotionCode.objects.get(project=project).code == "LAUNCH20"
    assert SubscriptionSource.objects.filter(project=project).count() == 12
    # Every invoice of an adopted customer, and the payment of every paid or attempted one.
    assert Invoice.objects.filter(project=project).count() == run.report["counts"]["invoices"]["created"]
    # The paid, non-zero ones: of the adopted subscriptions, and of the adopted customers' unmapped ones.
    assert Payment.objects.filter(project=project, status="succeeded").count() == 10
    assert Payment.objects.filter(project=project, status="requires_payment_method").count() == 2  # past_due

    # Reconciliation agrees with everything adopted; what it still finds is what the report listed: the
    # subscriptions of adopted customers on the product the mapping leaves out (their prices are in no catalog,
    # so no mirror holds them).
    recon = reconcile(project=project)
    assert recon.status == "completed"
    assert sorted(Drift.objects.values_list("kind", "object_type", "stripe_id")) == sorted(
        ("missing_locally", "subscription", sid) for sid in run.report["unmapped_subscriptions"]
    )

    before, requests_before = _rows(), requests.writes
    again = _adopt(project, seeded)
    assert again.status == "completed"
    assert again.report["nothing_to_do"] is True
    assert again.report["changes"] == []
    assert again.report["counts"]["subscriptions"] == {"unchanged": 12, "unmapped": 2}
    assert again.report["counts"]["customers"] == {"unchanged": 14, "without_key": 2}
    assert _rows() == before
    assert requests.writes == requests_before


def test_events_older_than_the_adoption_point_change_nothing(
    project, stripe_sdk, stripe_emulator, stripe_webhooks
):
    stripe_webhooks.register(project)  # the account's events queue up from now on, undelivered
    seeded = seed_account(stripe_sdk(ACCOUNT_KEY), stripe_emulator, subscriptions=7)
    run = _adopt(project, seeded)
    assert run.status == "completed"
    assert run.newest_event_id
    models = (Subscription, SubscriptionItem, Invoice, Payment, Customer, SubscriptionSource)
    before = {model.__name__: _state(model) for model in models}
    tenant_events = Event.objects.count()

    attempts = stripe_webhooks.deliver()  # every event of the account's past, after the adoption

    assert len(attempts) > 50
    assert all(response.status_code == 200 for response in stripe_webhooks.responses)
    assert {model.__name__: _state(model) for model in models} == before
    assert Event.objects.count() == tenant_events

    # A change after the adoption point is applied as usual.
    active = next(sid for sid, shape in seeded.subscriptions.items() if shape["items"] == ("pro",))
    stripe_sdk(ACCOUNT_KEY).v1.subscriptions.update(active, {"cancel_at_period_end": True})
    stripe_webhooks.deliver()
    assert Subscription.objects.get(stripe_subscription_id=active).cancel_at_period_end is True


def _state(model: Any) -> list[dict[str, Any]]:
    """The rows, without what records when they were last applied: an event of the very second of the adoption
    point that says something else is settled by reading Stripe again (`Ambiguous`), which moves the stamp to
    that read and changes nothing else."""
    return [
        {k: v for k, v in row.items() if k not in UNREAD} for row in model.objects.order_by("pk").values()
    ]


# What is not compared: when a row was last applied (above), and a failed attempt's decline (the adoption reads an
# invoice's attempts, which carry none: the earlier `payment_intent.payment_failed` event adds it, status unchanged).
UNREAD = frozenset({"stripe_event_created", "updated_at", "last_error_code", "decline_code"})


def test_entitlements_follow_the_adopted_subscriptions(project, seeded, api):
    _adopt(project, seeded)
    key = ApiKeyFactory(project=project).secret

    def answers(user: str) -> dict[str, Any]:
        body = api.get("/api/v1/entitlements", key=key, json_body={"customer": user}).json()
        return {row["feature"]: (row["enabled"], row["value"], row["limit"]) for row in body["entitlements"]}

    for shape in seeded.subscriptions.values():
        assert answers(shape["user"]) == implied_entitlements(shape), shape


def test_an_unknown_feature_in_the_mapping_fails_the_run_and_changes_nothing(project, seeded):
    mapping = {
        "products": [{"stripe_product": seeded.products["pro"], "key": "pro", "features": {"nope": True}}]
    }
    before = _rows()
    run = _adopt(project, seeded, mapping=mapping)
    assert (run.status, run.error) == ("failed", "unknown_feature: features.nope: no such feature.")
    assert _rows() == before


def test_the_command_prints_the_diff_and_a_second_run_has_nothing_to_do(project, seeded, tmp_path: Path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(yaml.safe_dump(seeded.mapping))
    args = ["stripe_adopt", "adopter", "--mapping", str(mapping), "--customer-metadata", "user_id"]

    out = io.StringIO()
    call_command(*args, "--dry-run", stdout=out)
    printed = out.getvalue()
    assert f"  create product pro from {seeded.products['pro']}" in printed
    assert "subscriptions: created 12, unmapped 2" in printed
    assert "adopter: dry run: nothing was changed;" in printed
    assert Subscription.objects.count() == 0

    out = io.StringIO()
    call_command(*args, stdout=out)
    assert "adopter: 12 subscription(s) adopted, 0 updated;" in out.getvalue()

    out = io.StringIO()
    call_command(*args, stdout=out)
    assert "adopter: nothing to do: everything was adopted already;" in out.getvalue()
    assert AdoptionRun.objects.filter(project__slug="adopter").count() == 3

    with pytest.raises(CommandError, match="customer_key: expected"):
        call_command("stripe_adopt", "adopter", "--mapping", str(mapping), "--customer-metadata", "x" * 41)


def test_platform_api_runs_an_adoption_and_reads_its_report(project, seeded, api, platform_key, tenant_a):
    body = {"dry_run": False, "customer_key": {"metadata": "user_id"}, "mapping": seeded.mapping}
    response = api.post(f"/api/v1/projects/{project.pk}/adoptions", body, key=platform_key)
    assert response.status_code == 202, response.json()
    created = response.json()
    assert (created["object"], created["project"], created["status"], created["dry_run"]) == (
        "adoption_run",
        project.pk,
        "pending",  # as recorded: the worker runs it once the request commits
        False,
    )
    run = api.get(f"/api/v1/projects/{project.pk}/adoptions/{created['id']}", key=platform_key).json()
    assert run["status"] == "completed"
    assert run["report"]["counts"]["subscriptions"] == {"created": 12, "unmapped": 2}
    assert run["adoption_point"]["newest_event"] == AdoptionRun.objects.get().newest_event_id
    assert Subscription.objects.filter(project=project).count() == 12

    # Another project's run, a project key, a bad mapping: refused, nothing recorded.
    assert (
        api.get(
            f"/api/v1/projects/{tenant_a.project.pk}/adoptions/{created['id']}", key=platform_key
        ).status_code
        == 404
    )
    assert api.post(f"/api/v1/projects/{project.pk}/adoptions", body, key=tenant_a.key).status_code == 403
    bad = api.post(
        f"/api/v1/projects/{project.pk}/adoptions", {**body, "mapping": {"products": "x"}}, key=platform_key
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_parameter")
    neither = api.post(
        f"/api/v1/projects/{project.pk}/adoptions", {**body, "customer_key": {}}, key=platform_key
    )
    assert (neither.status_code, neither.json()["error"]["code"]) == (400, "invalid_mapping")
    assert AdoptionRun.objects.count() == 1


def test_one_adoption_at_a_time_per_project(project, seeded):
    adoption_start(
        project=project, actor=Actor.system("t"), customer_key={"field": "email"}, mapping={}, queue=False
    )
    with pytest.raises(Conflict) as refused:
        adoption_start(
            project=project, actor=Actor.system("t"), customer_key={"field": "email"}, mapping={}, queue=False
        )
    assert refused.value.code == "adoption_running"
    assert AdoptionRun.objects.count() == 1

    # A run whose worker was lost (still running hours later) does not hold the project forever.
    AdoptionRun.objects.update(status="running", created_at=timezone.now() - timedelta(hours=7))
    adoption_start(
        project=project, actor=Actor.system("t"), customer_key={"field": "email"}, mapping={}, queue=False
    )
    assert sorted(AdoptionRun.objects.values_list("status", "error")) == [
        ("failed", "abandoned: no result after 6 hours"),
        ("pending", ""),
    ]


def test_another_projects_customers_on_the_platform_account_are_not_adopted(tenant_a, tenant_b, stripe_sdk):
    theirs = Customer.objects.create(project=tenant_b.project, external_id="b-1", email="b@example.com")
    customer_ensure_stripe(customer=theirs)
    theirs.refresh_from_db()
    mine = stripe_sdk().v1.customers.create({"email": "a@example.com"})

    run = adoption_start(
        project=tenant_a.project,
        actor=Actor.system("test"),
        customer_key={"field": "email"},
        mapping={},
        queue=False,
    )
    run = adoption_execute(run_id=run.pk)

    assert run.report["counts"]["customers"] == {"created": 1, "held_by_another_project": 1}
    assert run.report["held_by_another_project"] == [{"kind": "customers", "id": theirs.stripe_customer_id}]
    assert list(
        Customer.objects.filter(project=tenant_a.project).values_list("external_id", "stripe_customer_id")
    ) == [("a@example.com", mine.id)]
    assert Customer.objects.get(pk=theirs.pk).project_id == tenant_b.project.pk


def test_a_schedule_s_next_phase_is_adopted_as_the_pending_change_once(project, seeded, stripe_sdk):
    sdk = stripe_sdk(ACCOUNT_KEY)
    stripe_subscription_id, shape = next(
        (sid, shape)
        for sid, shape in seeded.subscriptions.items()
        if shape["status"] == "active" and shape["items"] == ("pro",)
    )
    live = sdk.v1.subscriptions.retrieve(stripe_subscription_id)
    item = live["items"].data[0]
    start, end = item.current_period_start, item.current_period_end
    schedule = sdk.v1.subscription_schedules.create({"from_subscription": stripe_subscription_id})
    sdk.v1.subscription_schedules.update(
        schedule.id,
        {
            "phases": [
                {
                    "items": [{"price": seeded.prices["pro"], "quantity": shape["quantity"]}],
                    "start_date": start,
                    "end_date": end,
                },
                {"items": [{"price": seeded.prices["pro"], "quantity": 3}], "iterations": 1},
            ],
            "proration_behavior": "none",
        },
    )

    dry = _adopt(project, seeded, dry_run=True)
    assert dry.report["counts"]["subscription_schedules"] == {"created": 1}
    assert not Subscription.objects.filter(project=project).exists()

    run = _adopt(project, seeded)
    assert run.report["counts"]["subscription_schedules"] == {"created": 1}
    subscription = Subscription.objects.get(project=project, stripe_subscription_id=stripe_subscription_id)
    assert subscription.pending_change == {
        "stripe_schedule_id": schedule.id,
        "price": "pro_monthly",
        "quantity": 3,
        "items": [["pro_monthly", 3]],
        "effective_at": end,
    }
    # Only this one subscription holds a pending change.
    assert Subscription.objects.filter(project=project, pending_change__isnull=False).count() == 1

    again = _adopt(project, seeded)
    assert again.report["counts"]["subscription_schedules"] == {"unchanged": 1}
    subscription.refresh_from_db()
    assert subscription.pending_change["quantity"] == 3
