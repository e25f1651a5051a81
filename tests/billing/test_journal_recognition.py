"""The revenue the journal recognises, end to end: money paid at Stripe (the emulator, through the official SDK)
waits in deferred revenue; once a month has ended, each document posts what its schedules earned by the month's end,
dated then, to the minor unit of the revenue report; prepaid credits move to their liability and out of it as they
are spent; a refund takes back what was still deferred. The month is posted once: a second run posts nothing."""

import io
from collections import defaultdict
from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.core.management import call_command

from billing.models import EntryKind, JournalEntry, JournalLine, RecognitionCursor
from billing.services.journal_recognition import journal_recognition
from billing.services.revenue_report import next_month, revenue_months
from billing.tasks import recognition_sync_all
from tests.billing.payment_factories import paid_credit_packs
from tests.billing.test_revenue_recognition import _subscribe

pytestmark = pytest.mark.django_db


def _balances(project, *, through: datetime) -> dict[str, int]:
    """Each account's balance (debits +) over the entries effective up to `through`."""
    balances: dict[str, int] = defaultdict(int)
    for account, amount in JournalLine.objects.filter(
        entry__project=project, entry__effective_at__lte=through
    ).values_list("account", "amount"):
        balances[account] += amount
    return {account: amount for account, amount in balances.items() if amount}


def _month_end(first) -> datetime:
    return datetime.combine(next_month(first), time.min, tzinfo=UTC) - timedelta(microseconds=1)


def _recognition(project) -> list[tuple[str, int, str, list[tuple[str, int]]]]:
    return [
        (
            entry.source[:3],
            entry.revision,
            entry.effective_at.isoformat(),
            sorted(entry.lines.values_list("account", "amount")),
        )
        for entry in JournalEntry.objects.filter(project=project, kind=EntryKind.RECOGNITION).order_by(
            "effective_at", "source"
        )
    ]


def test_each_ended_month_posts_what_was_recognised_at_its_end_to_the_minor_unit_of_the_report(
    api, tenant_a, tenant_b, catalog, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    _subscribe(api, tenant_a, sdk, stripe_webhooks)
    payment = api.get("/api/v1/payments", key=tenant_a.key, json_body={"customer": "user-1"}).json()["data"][
        0
    ]
    refunded = api.post(f"/api/v1/payments/{payment['id']}/refund", {"amount": 1000}, key=tenant_a.key)
    assert refunded.status_code == 200, refunded.content
    stripe_webhooks.deliver()
    month = datetime.now(UTC).date().replace(day=1)
    [usd] = revenue_months(tenant_a.project, month, month)[0].currencies
    # Before the month ends, nothing is recognised in the journal: the month is still open.
    assert journal_recognition(tenant_a.project) == 0
    assert _recognition(tenant_a.project) == []

    with time_machine.travel(datetime.combine(next_month(month), time(0, 30), tzinfo=UTC)):
        posted = recognition_sync_all()
        assert journal_recognition(tenant_a.project) == 0  # posted once

    end = _month_end(month)
    entries = _recognition(tenant_a.project)
    assert posted == len(entries)
    [(source, revision, effective, lines), *refund] = entries
    assert (source, revision, effective) == ("in_", 1, end.isoformat())
    # The invoice's line: what it earned by the month's end, from deferred revenue to revenue.
    earned = dict(lines)["deferred_revenue"]
    assert lines == [("deferred_revenue", earned), ("revenue", -earned)]
    # The refund's (when it took back revenue still deferred at the month's end; none when the period was the
    # calendar month): that, out of the refunds and out of deferred revenue.
    for source, revision, effective, lines in refund:
        taken_back = dict(lines)["deferred_revenue"]
        assert (source, revision, effective) == ("re_", 1, end.isoformat())
        assert lines == [("deferred_revenue", taken_back), ("refunds", -taken_back)]
    # The journal's accounts at the month's end are the month's report, to the minor unit.
    balances = _balances(tenant_a.project, through=end)
    assert -balances["revenue"] - balances["refunds"] == usd.recognised
    assert -balances.get("deferred_revenue", 0) == usd.deferred_closing
    assert "receivables" not in balances
    assert "prepaid_credits" not in balances
    assert not JournalEntry.objects.filter(project=tenant_b.project).exists()
    assert RecognitionCursor.objects.get(project=tenant_a.project).journal_month == month

    # Once the period is over, every month ended is posted: all of it earned, nothing deferred.
    later = next_month(next_month(month))
    with time_machine.travel(datetime.combine(later, time(0, 30), tzinfo=UTC)):
        assert journal_recognition(tenant_a.project) == len(refund) * 2  # none when the period was the month
    balances = _balances(tenant_a.project, through=_month_end(later))
    assert (balances["revenue"], balances["refunds"], balances.get("deferred_revenue", 0)) == (-3000, 1000, 0)
    assert RecognitionCursor.objects.get(project=tenant_a.project).journal_month == next_month(month)


def test_prepaid_credits_move_to_their_liability_and_a_refund_learnt_late_is_posted_when_learnt(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks, tmp_path
):
    from catalog.models import Feature, ProductFeature
    from tests.entitlements.helpers import feature

    tokens = feature(tenant_a.project, "tokens", Feature.Type.CREDITS)
    ProductFeature.objects.create(product=catalog.credits, feature=tokens, value=1000)
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk)  # two packs: 2000 tokens for 3000
    stripe_webhooks.deliver()
    spent = api.post(
        "/api/v1/entitlements/consume",
        {"id": "c1", "customer": "user-1", "feature": "tokens", "quantity": 500},
        key=tenant_a.key,
    )
    assert spent.json()["allowed"] is True
    month = datetime.now(UTC).date().replace(day=1)
    revenue_months(tenant_a.project, month, month)  # the payment's schedules
    # Refunded in the month (1000 of the 2250 still owed in credits), its schedules not yet written when the
    # month is posted.
    refunded = api.post(f"/api/v1/payments/{paid['id']}/refund", {"amount": 1000}, key=tenant_a.key)
    assert refunded.status_code == 200, refunded.content
    stripe_webhooks.deliver()

    with time_machine.travel(datetime.combine(next_month(month), time(0, 30), tzinfo=UTC)):
        assert journal_recognition(tenant_a.project) == 1

    end = _month_end(month).isoformat()
    # All 3000 from deferred revenue to prepaid credits; a quarter of the tokens spent: 750 earned.
    assert _recognition(tenant_a.project) == [
        ("pay", 1, end, [("deferred_revenue", 3000), ("prepaid_credits", -2250), ("revenue", -750)])
    ]

    # The refund's schedules written after the month was posted: its entry is dated when they were. It leaves
    # the liability, not revenue.
    learnt = datetime.combine(next_month(month), time(1, 0), tzinfo=UTC)
    with time_machine.travel(learnt, tick=False):
        assert recognition_sync_all() == 1 + 1  # the refund's schedule; its entry
    assert _recognition(tenant_a.project)[1:] == [
        ("re_", 1, learnt.isoformat(), [("prepaid_credits", 1000), ("refunds", -1000)])
    ]
    [usd] = revenue_months(tenant_a.project, month, month)[0].currencies
    balances = _balances(tenant_a.project, through=learnt)
    assert -balances["prepaid_credits"] == usd.credits_closing == 1250
    assert -balances["revenue"] - balances.get("refunds", 0) == usd.recognised == 750
    assert "deferred_revenue" not in balances

    # The month's close posts nothing more; its journal holds the month's entries in the chart of accounts.
    closed = f"{month:%Y-%m}"
    with time_machine.travel(datetime.combine(next_month(month), time(2, 0), tzinfo=UTC)):
        out = io.StringIO()
        call_command(
            "month_close", "--project", "alpha", "--month", closed, "--output-dir", str(tmp_path), stdout=out
        )
    assert not [line for line in out.getvalue().splitlines() if "revenue recognised" in line]
    journal = (tmp_path / f"alpha-{closed}-journal.csv").read_text().splitlines()
    recognition = [line.split(",") for line in journal[1:] if ",recognition," in line]
    assert sorted((row[7], row[8], row[9], row[10]) for row in recognition) == [
        ("2100", "Deferred revenue", "30.00", ""),
        ("2500", "Prepaid credits", "", "22.50"),
        ("4000", "Revenue recognised", "", "7.50"),
    ]


def test_a_months_close_posts_the_revenue_recognised_before_the_journal_is_exported(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks, tmp_path
):
    sdk = stripe_sdk()
    paid_credit_packs(api, tenant_a, sdk)  # a one-off purchase: earned at once
    stripe_webhooks.deliver()
    month = datetime.now(UTC).date().replace(day=1)
    closed = f"{month:%Y-%m}"

    with time_machine.travel(datetime.combine(next_month(month), time(0, 30), tzinfo=UTC)):
        out = io.StringIO()
        call_command(
            "month_close", "--project", "alpha", "--month", closed, "--output-dir", str(tmp_path), stdout=out
        )

    assert "  revenue recognised: 1 journal entry posted" in out.getvalue().splitlines()
    journal = (tmp_path / f"alpha-{closed}-journal.csv").read_text().splitlines()
    recognition = [line.split(",") for line in journal[1:] if ",recognition," in line]
    assert sorted((row[4][:4], row[7], row[9], row[10]) for row in recognition) == [
        ("pay_", "2100", "30.00", ""),
        ("pay_", "4000", "", "30.00"),
    ]
