"""No admin list page issues N+1 queries: the query count with 50 rows equals the count with 2."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from core.models import AuditLogEntry
from tests.billing.factories import PriceFactory
from tests.billing.payment_factories import (
    CartFactory,
    CustomerFactory,
    InvoiceFactory,
    PaymentFactory,
    SubscriptionFactory,
)
from tests.projects.factories import ApiKeyFactory, ProjectFactory
from tests.webhooks.factories import EventFactory, WebhookEndpointFactory


def _audit(project):
    return AuditLogEntry.objects.create(
        project=project, actor_type="system", action="x", target_type="t", target_id="1"
    )


CASES = {
    "/admin/billing/payment/": PaymentFactory,
    "/admin/billing/customer/": CustomerFactory,
    "/admin/billing/subscription/": SubscriptionFactory,
    "/admin/billing/invoice/": InvoiceFactory,
    "/admin/billing/cart/": CartFactory,
    "/admin/billing/price/": PriceFactory,
    "/admin/projects/apikey/": ApiKeyFactory,
    "/admin/webhooks/event/": EventFactory,
    "/admin/webhooks/webhookendpoint/": WebhookEndpointFactory,
    "/admin/core/auditlogentry/": _audit,
}


@pytest.mark.parametrize("path", sorted(CASES))
def test_changelist_query_count_does_not_grow_with_rows(db, path):
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    make = CASES[path]

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
