"""The entitlements hook: every change of what a customer may use bumps the customer's version on commit."""

from django.core.cache import cache
from django.db import transaction

from billing.models import Payment
from customers.models import Customer
from entitlements.services.recompute import entitlements_recompute, version_key

OK = "https://app.example.com/ok"


def test_version_changes_only_when_the_change_commits(tenant_a, django_capture_on_commit_callbacks):
    customer = Customer.objects.create(project=tenant_a.project, external_id="u")
    assert cache.get(version_key(customer)) is None
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        entitlements_recompute(customer=customer)
        assert cache.get(version_key(customer)) is None  # not before the commit
    first = cache.get(version_key(customer))
    assert first is not None
    with django_capture_on_commit_callbacks(execute=True):
        entitlements_recompute(customer=customer)
    assert cache.get(version_key(customer)) not in (None, first)


def test_rolled_back_change_does_not_bump(tenant_a, django_capture_on_commit_callbacks):
    customer = Customer.objects.create(project=tenant_a.project, external_id="u")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                entitlements_recompute(customer=customer)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
    assert callbacks == []
    assert cache.get(version_key(customer)) is None


def test_payment_and_subscription_changes_call_the_hook(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": "user-1", "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=tenant_a.key,
    ).json()
    customer = Customer.objects.get(external_id="user-1")
    assert cache.get(version_key(customer)) is None  # a pending checkout grants nothing
    stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{created['stripe_session_id']}/complete",
        query="",
        body=b"card=4242424242424242",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    stripe_webhooks.deliver()
    assert Payment.objects.get(pk=created["payment"]).status == "succeeded"
    paid_version = cache.get(version_key(customer))
    assert paid_version is not None
    stripe_emulator.advance(31 * 86400)  # a renewal
    stripe_webhooks.deliver()
    assert cache.get(version_key(customer)) != paid_version


def test_a_renewal_recomputes_the_customers_entitlements_once(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    """A renewal's events (invoice created, finalized, paid; payment succeeded; subscription's new period) are one
    transition for what the customer may use: recomputed once (the subscription's new period), not again for the
    invoice's payment, whose plan credits only invalidate the cached answer."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.e2e.test_subscription_lifecycle import _subscribe

    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    stripe_emulator.advance(31 * 86400)
    with CaptureQueriesContext(connection) as queries:
        stripe_webhooks.deliver()
    recomputes = [q["sql"] for q in queries if 'FROM "entitlements_entitlementstate"' in q["sql"]]
    assert len(recomputes) == 1, recomputes


def test_a_warm_recompute_compiles_none_of_its_reads(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    """The recompute's reads are compiled statements (`entitlements.statements`): once a connection ran them, a
    recompute that changes nothing runs its reads without Django building or compiling a single query."""
    from django.db import connection
    from django.db.models.sql.compiler import SQLCompiler
    from django.test.utils import CaptureQueriesContext

    from tests.e2e.test_subscription_lifecycle import _subscribe

    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    customer = Customer.objects.select_related("project").get(project=tenant_a.project, external_id="user-1")
    entitlements_recompute(customer=customer)  # compiles what the subscription's events have not yet
    compiled: list[str] = []
    as_sql = SQLCompiler.as_sql

    def counting(self: SQLCompiler, *args: object, **kwargs: object) -> object:
        compiled.append(self.query.model.__name__ if self.query.model else "?")
        return as_sql(self, *args, **kwargs)

    SQLCompiler.as_sql = counting  # type: ignore[method-assign]
    try:
        with CaptureQueriesContext(connection) as queries:
            entitlements_recompute(customer=customer)
    finally:
        SQLCompiler.as_sql = as_sql  # type: ignore[method-assign]
    assert compiled == []
    reads = [q["sql"] for q in queries]
    # settings, features, subscriptions, purchases, product values, grants, revocations, the state (unchanged)
    assert len(reads) >= 8
    assert all(sql.lstrip().upper().startswith("SELECT") for sql in reads), reads
