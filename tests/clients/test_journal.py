"""`journal.entries.list` on the live server: the journal as a stream of typed entries, page by page after the
cursor each page answers, trailing the writers by a minute (the clock moved with time-machine, in the server's
thread too: it is this process's)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone
from tollgate_client import InvalidRequestError, StreamPage
from tollgate_client.types import JournalEntry, JournalLine

from billing.models import BalanceTransaction, Refund
from billing.models import JournalEntry as JournalEntryRow
from billing.selectors import JOURNAL_SETTLE
from tests.billing.test_journal import _sync

pytestmark = pytest.mark.django_db(transaction=True)


def _typed(row: JournalEntryRow, *lines: JournalLine) -> JournalEntry:
    return JournalEntry(
        id=row.pk,
        kind=row.kind,
        source=row.source,
        revision=row.revision,
        currency=row.currency,
        effective_at=row.effective_at.isoformat().replace("+00:00", "Z"),
        posted_at=row.created_at.isoformat().replace("+00:00", "Z"),
        lines=list(lines),
    )


def test_the_journal_streams_page_by_page_after_each_pages_cursor(
    tollgate, tollgate_b, tenant_a, catalog, stripe_sdk, stripe_webhooks
):
    """Two credit packs paid (30.00), 5.00 of it refunded, and Stripe's fee of the charge (1.17)."""
    payment = tollgate.payments.create(customer="user-1", flow="intent", price="credits-1000", quantity=2)
    stripe_sdk().v1.payment_intents.confirm(
        payment.stripe_payment_intent_id, {"payment_method": "pm_card_visa"}
    )
    stripe_webhooks.deliver()
    assert tollgate.payments.refund(payment.id, amount=500).amount_refunded == 500
    stripe_webhooks.deliver()
    _sync(tenant_a.project)
    rows = list(JournalEntryRow.objects.order_by("created_at", "id"))
    assert [(r.kind, r.source) for r in rows] == [
        ("payment", payment.id),
        ("refund", Refund.objects.get().stripe_refund_id),
        ("fee", BalanceTransaction.objects.get(type="charge").stripe_balance_transaction_id),
    ]

    # Just posted: not served yet.
    now = tollgate.journal.entries.list()
    assert isinstance(now, StreamPage)
    assert (now.data, now.has_more, now.next) == ([], False, None)

    with time_machine.travel(timezone.now() + JOURNAL_SETTLE, tick=True):
        first = tollgate.journal.entries.list(limit=1)
        assert (len(first.data), first.has_more, first.raw["next"]) == (1, True, first.next)
        every = list(first.auto_paging_iter())
        second = first.next_page()
        assert isinstance(second, StreamPage)
        assert [e.id for e in second.data] == [rows[1].pk]
        cash = ("stripe_balance", "1010", "Cash at Stripe")
        assert every == [
            _typed(
                rows[0],
                JournalLine(account=cash[0], code=cash[1], name=cash[2], debit=3000, credit=0),
                JournalLine(
                    account="deferred_revenue", code="2100", name="Deferred revenue", debit=0, credit=3000
                ),
            ),
            _typed(
                rows[1],
                JournalLine(account=cash[0], code=cash[1], name=cash[2], debit=0, credit=500),
                JournalLine(
                    account="refunds", code="4900", name="Refunds and credit notes", debit=500, credit=0
                ),
            ),
            _typed(
                rows[2],
                JournalLine(account=cash[0], code=cash[1], name=cash[2], debit=0, credit=117),
                JournalLine(account="stripe_fees", code="6100", name="Stripe fees", debit=117, credit=0),
            ),
        ]

        whole = tollgate.journal.entries.list(limit=500)
        assert ([e.id for e in whole], whole.has_more) == ([r.pk for r in rows], False)
        caught_up = tollgate.journal.entries.list(after=whole.next)
        assert (caught_up.data, caught_up.has_more, caught_up.next) == ([], False, whole.next)
        assert [e.id for e in tollgate.journal.entries.list(after=first.next)] == [rows[1].pk, rows[2].pk]

        assert [e.kind for e in tollgate.journal.entries.list(kind="refund")] == ["refund"]
        tomorrow = datetime.now(UTC) + timedelta(days=1)
        assert len(tollgate.journal.entries.list(effective_to=tomorrow)) == 3
        assert len(tollgate.journal.entries.list(effective_from=tomorrow.date())) == 0

        assert tollgate_b.journal.entries.list().data == []
        with pytest.raises(InvalidRequestError) as refused:
            tollgate.journal.entries.list(after="not-a-cursor")
        assert (refused.value.code, refused.value.param) == ("invalid_cursor", "after")
        with pytest.raises(InvalidRequestError) as refused:
            tollgate.journal.entries.list(limit=501)
        assert refused.value.param == "limit"
