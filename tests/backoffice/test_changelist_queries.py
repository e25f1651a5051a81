"""No admin list page issues N+1 queries: the query count with 50 rows equals the count with 2."""

from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Feature, ProductAccess, ProductFeature
from core.models import AuditLogEntry
from entitlements.models import (
    AllocationCounter,
    CreditLedgerEntry,
    CreditLot,
    EntitlementSettings,
    Purchase,
    UsageCounter,
    UsageEvent,
)
from tests.billing.factories import CreditNoteFactory, PriceFactory, ProductFactory
from tests.billing.payment_factories import (
    CartFactory,
    CustomerFactory,
    InvoiceFactory,
    PaymentFactory,
    SubscriptionFactory,
)
from tests.entitlements.factories import FeatureFactory
from tests.entitlements.grant_factories import GrantFactory, RevocationFactory
from tests.entitlements.helpers import hand_subscription
from tests.events.factories import EventFactory, WebhookEndpointFactory
from tests.projects.factories import ApiKeyFactory, ProjectFactory


def _audit(project):
    return AuditLogEntry.objects.create(
        project_id=project.pk, actor_type="system", action="x", target_type="t", target_id="1"
    )


CASES = {
    "/admin/billing/payment/": PaymentFactory,
    "/admin/customers/customer/": CustomerFactory,
    "/admin/billing/subscription/": SubscriptionFactory,
    "/admin/billing/invoice/": InvoiceFactory,
    "/admin/billing/creditnote/": CreditNoteFactory,
    "/admin/billing/cart/": CartFactory,
    "/admin/catalog/price/": PriceFactory,
    "/admin/projects/apikey/": ApiKeyFactory,
    "/admin/events/event/": EventFactory,
    "/admin/events/webhookendpoint/": WebhookEndpointFactory,
    "/admin/core/auditlogentry/": _audit,
}


def _root() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    return client


def _assert_flat(path, make):
    """The page's query count with 50 rows equals its count with 2."""
    client = _root()

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(path).status_code == 200
        return len(queries.captured_queries)

    for _ in range(2):
        make(project=ProjectFactory())
    few = count()
    for _ in range(48):
        make(project=ProjectFactory())
    assert count() == few


@pytest.mark.parametrize("path", sorted(CASES))
def test_changelist_query_count_does_not_grow_with_rows(db, path):
    _assert_flat(path, CASES[path])


# --- the entitlements pages, and the customer's own pages (inlines, explain) --------------------------------


def _purchase(project):
    payment = PaymentFactory(project=project)
    return Purchase.objects.create(
        project=project,
        customer=payment.customer,
        payment_id=payment.pk,
        line=0,
        product=ProductFactory(project=project),
        starts_at=timezone.now(),
    )


def _usage_event(project):
    return UsageEvent.objects.create(
        project=project,
        customer=CustomerFactory(project=project),
        feature=FeatureFactory(project=project, type=Feature.Type.METERED),
        event_id=f"ev-{project.pk}",
        quantity=3,
        timestamp=timezone.now(),
    )


def _credit_lot(project, customer=None):
    return CreditLot.objects.create(
        project=project,
        customer=customer or CustomerFactory(project=project),
        feature=FeatureFactory(project=project, type=Feature.Type.CREDITS),
        source=CreditLot.Source.GRANT,
        amount=10,
        remaining=10,
    )


def _ledger_entry(project):
    lot = _credit_lot(project)
    return CreditLedgerEntry.objects.create(
        project=project,
        customer=lot.customer,
        feature=lot.feature,
        lot=lot,
        type=CreditLedgerEntry.Type.GRANT,
        amount=10,
    )


ENTITLEMENT_CASES = {
    "/admin/entitlements/grant/": GrantFactory,
    "/admin/entitlements/revocation/": RevocationFactory,
    "/admin/entitlements/purchase/": _purchase,
    "/admin/entitlements/usageevent/": _usage_event,
    "/admin/entitlements/creditlot/": _credit_lot,
    "/admin/entitlements/creditledgerentry/": _ledger_entry,
    "/admin/entitlements/entitlementsettings/": lambda project: EntitlementSettings.objects.create(
        project=project
    ),
    "/admin/catalog/productaccess/": lambda project: ProductAccess.objects.create(
        product=ProductFactory(project=project), duration_days=30
    ),
}


@pytest.mark.parametrize("path", sorted(ENTITLEMENT_CASES))
def test_entitlement_changelist_query_count_does_not_grow_with_rows(db, path):
    _assert_flat(path, ENTITLEMENT_CASES[path])


def _customer_with(count: int, cust, project) -> None:
    """`count` rows of every kind the customer page and its entitlements page show."""
    calls = FeatureFactory(project=project, type=Feature.Type.METERED)
    for n in range(count):
        price = PriceFactory(project=project)
        hand_subscription(SubscriptionFactory(project=project, customer=cust, price=price))
        payment = PaymentFactory(project=project, customer=cust)
        InvoiceFactory(project=project, customer=cust)
        Purchase.objects.create(
            project=project,
            customer=cust,
            payment_id=payment.pk,
            line=0,
            product=price.product,
            starts_at=timezone.now(),
        )
        ProductFeature.objects.create(product=price.product, feature=calls, value=10)
        GrantFactory(project=project, customer=cust, feature=calls, value=5)
        RevocationFactory(project=project, customer=cust)
        _credit_lot(project, cust)
        start = timezone.now() - timedelta(days=31 * (n + 1))
        UsageCounter.objects.create(
            project=project,
            customer=cust,
            feature=calls,
            period_start=start,
            period_end=start + timedelta(days=31),
        )
        AllocationCounter.objects.create(
            project=project,
            customer=cust,
            feature=FeatureFactory(project=project, type=Feature.Type.ALLOCATION),
            in_use=n,
        )


@pytest.mark.parametrize("page", ["change/", "entitlements/"])
def test_the_customer_pages_do_not_grow_queries_with_rows(db, page, settings):
    """The customer page (billing and entitlement inlines) and its explain page: 2 rows of each kind cost the same
    number of queries as 12 (more features do add their own rows, not queries)."""
    # The cache epoch is re-read once a second per process: a warm-up slower than that (12 rows on a loaded
    # machine) would add that read to one measurement and not the other.
    settings.CACHE_EPOCH_CHECK_SECONDS = 3600
    client = _root()
    counts = []
    for rows in (2, 12):
        project = ProjectFactory()
        cust = CustomerFactory(project=project)
        _customer_with(rows, cust, project)
        cache.clear()
        client.get(f"/admin/customers/customer/{quote(cust.pk)}/{page}")  # warms per-process caches
        cache.clear()
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/admin/customers/customer/{quote(cust.pk)}/{page}").status_code == 200
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1]
