"""Back-office pages name what they show as people read it: MRR as money a month, a Unix time as a moment, a
boolean under a label that reads right with ✔ and ✖, an invoice's service period from its lines, a line's
quantity once, a choice by its label, and a long reference cut with its whole text in a tooltip."""

import re
from datetime import UTC, datetime

from django.contrib.admin.utils import quote

from billing.models import Payment
from tests.backoffice.test_money_display import _root, _shown
from tests.billing.payment_factories import (
    CustomerFactory,
    InvoiceFactory,
    PaymentFactory,
    SubscriptionFactory,
)

START = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
END = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())


def _page(client, url):
    return re.sub(r"\s+", " ", client.get(url).content.decode())


def test_a_subscription_shows_its_mrr_as_money_a_month_and_its_schedule_event_as_a_moment(tenant_a):
    live = SubscriptionFactory(
        project=tenant_a.project, mrr_counted=12_250_000_000, mrr_currency="usd", schedule_event_created=END
    )
    ended = SubscriptionFactory(project=tenant_a.project, status="canceled")
    client = _root()

    values, inputs = _shown(client, f"/admin/billing/subscription/{quote(live.pk)}/change/")
    assert (values["MRR counted"], values["Newest schedule event applied"]) == (
        "$122.50 a month",
        "2026-12-01 00:00:00Z",
    )
    assert ("Mrr counted" in values, "Mrr currency" in values, "Schedule event created" in values) == (
        False,
        False,
        False,
    )
    assert inputs == set()
    values, _ = _shown(client, f"/admin/billing/subscription/{quote(ended.pk)}/change/")
    assert (values["MRR counted"], values["Newest schedule event applied"]) == ("-", "-")


def test_a_customer_page_says_whether_stripe_is_up_to_date(tenant_a):
    customer = CustomerFactory(project=tenant_a.project)
    html = _page(_root(), f"/admin/customers/customer/{quote(customer.pk)}/change/")

    assert "Change not at Stripe yet" not in html
    assert re.search(r'<label>Stripe up to date:</label> <div class="readonly"><img [^>]*alt="True"', html)


def test_an_invoice_shows_the_period_its_lines_bill_and_each_quantity_once(tenant_a):
    # Stripe's first invoice of a subscription: its own period_start and period_end are both its creation.
    created = datetime.fromtimestamp(START, tz=UTC)
    invoice = InvoiceFactory(
        project=tenant_a.project,
        total=4900,
        period_start=created,
        period_end=created,
        lines=[
            {
                "description": "1 × Professional (at $49.00 / month)",
                "amount": 4900,
                "currency": "usd",
                "quantity": 1,
                "proration": False,
                "period_start": START,
                "period_end": END,
            },
            {
                "description": "Seats",
                "amount": 0,
                "currency": "usd",
                "quantity": 3,
                "proration": False,
                "period_start": START,
                "period_end": END,
            },
        ],
    )
    client = _root()

    values, _ = _shown(client, f"/admin/billing/invoice/{quote(invoice.pk)}/change/")
    assert (values["Period from"], values["Period until"]) == (
        "2026-11-01 00:00:00Z",
        "2026-12-01 00:00:00Z",
    )
    html = _page(client, f"/admin/billing/invoice/{quote(invoice.pk)}/change/")
    assert (
        '<div class="readonly">1 × Professional (at $49.00 / month): $49.00<br>Seats (× 3): $0.00</div>'
        in html
    )
    customer_page = _page(client, f"/admin/customers/customer/{quote(invoice.customer.pk)}/change/")
    assert re.search(r'<td class="field-period_ends"> ?<p>2026-12-01 00:00:00Z</p>', customer_page)
    listing = _page(client, "/admin/billing/invoice/")
    assert re.search(r'<td class="field-period_end[^"]*">2026-12-01 00:00:00Z</td>', listing)


def test_the_payments_list_names_flows_by_label_and_cuts_a_recharge_reference(tenant_a):
    reference = "auto_recharge:arc_o5O6yI4nD9hXHdwKj9NSKcKD:1"
    PaymentFactory(project=tenant_a.project, flow=Payment.Flow.OFF_SESSION, reference=reference)
    listing = _page(_root(), "/admin/billing/payment/")

    assert '<td class="field-flow">Off session</td>' in listing
    cell = re.search(r'<td class="field-reference">(.*?)</td>', listing)
    assert cell is not None
    assert cell.group(1).startswith(f'<span class="tg-long" title="{reference}">')
    assert (
        cell.group(1).replace("<wbr>", "") == f'<span class="tg-long" title="{reference}">{reference}</span>'
    )
