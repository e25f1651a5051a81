"""An invoice line's period through the Python client is ISO 8601 like every other time of the API (it was Unix
seconds): on an invoice, and on a change's preview."""

from datetime import UTC, datetime

import pytest

from billing.models import Invoice
from tests.clients.test_journey import _define_catalog, _subscribe_and_pay

pytestmark = pytest.mark.django_db(transaction=True)


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def test_invoice_and_preview_lines_carry_iso_periods(tollgate, stripe_emulator, stripe_webhooks, stripe_sdk):
    _define_catalog(tollgate)
    _subscribe_and_pay(tollgate, stripe_emulator, stripe_webhooks)
    (subscription,) = tollgate.subscriptions.list(customer="user-42").data
    (invoice,) = tollgate.invoices.list(customer="user-42").data
    at_stripe = stripe_sdk().v1.invoices.retrieve(Invoice.objects.get().stripe_invoice_id).lines.data

    assert [(line.period_start, line.period_end) for line in invoice.lines] == [
        (_iso(line.period.start), _iso(line.period.end)) for line in at_stripe
    ]
    assert [
        (line.period_start, line.period_end) for line in tollgate.invoices.retrieve(invoice.id).lines
    ] == [(subscription.current_period_start, subscription.current_period_end)]

    preview = tollgate.subscriptions.preview(subscription.id, quantity=2, proration_behavior="always_invoice")
    assert {line.period_end for line in preview.lines} == {subscription.current_period_end}
    for line in preview.lines:
        assert isinstance(line.period_start, str)
        start = datetime.fromisoformat(line.period_start.replace("Z", "+00:00"))
        assert line.period_start == _iso(int(start.timestamp()))
