"""A month's close (`manage.py month_close --no-sync` of last month: the tie-out on the balance transactions already
read, the revenue report, the revenue recognised posted to the journal, the journal export) of a project with
`BENCH_CLOSE_SUBSCRIPTIONS` subscriptions (default 20,000), as a ratio to one with FEW, measured in the same run; the
issue's target is 30 s at 20,000 (#53).

Each subscription has two paid monthly invoices, last month's and this month's, each with its payment, Stripe's
charge (a balance transaction with its fee) and the journal entries the billing writers post for them (the
postings of `billing.services.journal`, written in bulk); one in ten payments is refunded in part. Rows are written
in bulk, never through the API. The close is timed cold (the first report writes every revenue schedule of both
months and the close posts last month's recognition to the journal, as after an upgrade), with the month not yet
synced (its invoices' schedules written by the close, and their recognition compared with the journal's: beat's
sync has not run since), and warm (beat's sync ran: the report reads the schedules only), ROUNDS times for the warm
one. The rows are deleted at the end.
"""

import io
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

SUBSCRIPTIONS = int(os.environ.get("BENCH_CLOSE_SUBSCRIPTIONS", "20000"))
FEW = 100
ROUNDS = 3
TARGET_SECONDS = 30.0


def _seed(project: Any, count: int, now: datetime) -> None:
    from bench.setup import subscribers_seed
    from billing.models import (
        BalanceTransaction,
        Invoice,
        JournalEntry,
        JournalLine,
        Payment,
        Refund,
    )
    from billing.services.journal import fee_postings, invoice_postings, payment_postings, refund_postings
    from catalog.models import Price, Product
    from core.ids import new_ids

    product = Product.objects.create(project=project, key="pro", name="Pro")
    price = Price.objects.create(
        project=project,
        product=product,
        key="pro-monthly",
        currency="usd",
        unit_amount=3000,
        type=Price.Type.RECURRING,
        interval=Price.Interval.MONTH,
        stripe_price_id=f"price_{project.slug}",
    )
    subscriptions = subscribers_seed(project, count, price)
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    invoices, payments, txns, refunds = [], [], [], []
    for months_ago in (1, 0):
        start_of = (this_month - timedelta(days=1)).replace(day=1) if months_ago else this_month
        for n, subscription in enumerate(subscriptions):
            paid = start_of + timedelta(days=n % 25, minutes=n % 1440)
            key = f"{project.slug}_{months_ago}_{n}"
            invoices.append(
                Invoice(
                    project=project,
                    customer_id=subscription.customer_id,
                    subscription=subscription,
                    stripe_invoice_id=f"in_{key}",
                    stripe_subscription_id=subscription.stripe_subscription_id,
                    status="paid",
                    billing_reason="subscription_cycle",
                    currency="usd",
                    subtotal=3000,
                    total=3000,
                    amount_due=3000,
                    amount_paid=3000,
                    paid_at=paid,
                    period_start=paid,
                    period_end=paid + timedelta(days=30),
                    lines=[
                        {
                            "stripe_line_id": f"il_{key}",
                            "type": "subscription_item",
                            "description": "1 × Pro",
                            "amount": 3000,
                            "currency": "usd",
                            "quantity": 1,
                            "proration": False,
                            "stripe_price_id": price.stripe_price_id,
                            "period_start": int(paid.timestamp()),
                            "period_end": int((paid + timedelta(days=30)).timestamp()),
                        }
                    ],
                )
            )
            payments.append(
                Payment(
                    project=project,
                    customer_id=subscription.customer_id,
                    type=Payment.Type.SUBSCRIPTION,
                    flow=Payment.Flow.INTENT,
                    source=Payment.Source.INVOICE,
                    amount=3000,
                    currency="usd",
                    status=Payment.Status.SUCCEEDED,
                    succeeded_at=paid,
                    stripe_payment_intent_id=f"pi_{key}",
                    stripe_invoice_id=f"in_{key}",
                )
            )
            txns.append(
                BalanceTransaction(
                    project=project,
                    stripe_balance_transaction_id=f"txn_{key}",
                    type="charge",
                    reporting_category="charge",
                    status="available",
                    source=f"ch_{key}",
                    payment_intent=f"pi_{key}",
                    currency="usd",
                    amount=3000,
                    fee=117,
                    net=2883,
                    created_at=paid,
                    available_on=paid + timedelta(days=2),
                )
            )
    Invoice.objects.bulk_create(invoices, batch_size=5000)
    Payment.objects.bulk_create(payments, batch_size=5000)
    BalanceTransaction.objects.bulk_create(txns, batch_size=5000)
    for n, payment in enumerate(payments[::10]):
        made = payment.succeeded_at + timedelta(hours=1)  # type: ignore[operator]
        refunds.append(
            Refund(
                project=project,
                payment=payment,
                amount=1000,
                currency="usd",
                status=Refund.Status.SUCCEEDED,
                stripe_refund_id=f"re_{project.slug}_{n}",
                created_at=made,
            )
        )
        txns.append(
            BalanceTransaction(
                project=project,
                stripe_balance_transaction_id=f"txn_re_{project.slug}_{n}",
                type="refund",
                reporting_category="refund",
                status="available",
                source=f"re_{project.slug}_{n}",
                payment_intent=payment.stripe_payment_intent_id,
                currency="usd",
                amount=-1000,
                fee=0,
                net=-1000,
                created_at=made,
                available_on=made,
            )
        )
    Refund.objects.bulk_create(refunds, batch_size=5000)
    BalanceTransaction.objects.bulk_create(txns[len(payments) :], batch_size=5000)
    entries, lines = [], []
    postings = [
        *(("invoice", i.stripe_invoice_id, i.paid_at, invoice_postings(i)) for i in invoices),
        *(("payment", str(p.pk), p.succeeded_at, payment_postings(p)) for p in payments),
        *(("refund", r.stripe_refund_id, r.created_at, refund_postings(r)) for r in refunds),
        *(("fee", t.stripe_balance_transaction_id, t.created_at, fee_postings(t)) for t in txns if t.fee),
    ]
    for (kind, source, when, posting), pk in zip(postings, new_ids("je", len(postings)), strict=True):
        entries.append(
            JournalEntry(
                id=pk,
                project=project,
                kind=kind,
                source=source,
                revision=1,
                currency="usd",
                effective_at=when,
            )
        )
        lines.extend(
            JournalLine(entry_id=pk, account=account, amount=amount) for account, amount in posting.items()
        )
    JournalEntry.objects.bulk_create(entries, batch_size=5000)
    JournalLine.objects.bulk_create(lines, batch_size=5000)
    _age(project, now)


def _age(project: Any, now: datetime) -> None:
    """The project's rows last changed an hour ago, as a month's are by its close: the report's sync reads what
    changed since its last one, less a margin of minutes, so a warm close reads none of them again."""
    from billing.models import Invoice, Payment, Refund, Subscription

    earlier = now - timedelta(hours=1)
    for model in (Invoice, Payment, Refund, Subscription):
        model.objects.filter(project=project).update(updated_at=earlier)
    _analyze()


def _analyze() -> None:
    """The planner's statistics of the tables a close reads, as autovacuum keeps them on a database that has held
    its rows for a month: without them, PostgreSQL plans the rows just written in bulk as a table of none (a
    sequential scan per batch of documents)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def _drop(project: Any) -> None:
    from django.db import connection

    from billing.models import (
        BalanceTransaction,
        Invoice,
        JournalEntry,
        JournalLine,
        Payment,
        RecognitionCursor,
        Refund,
        RevenueSchedule,
        Subscription,
    )
    from catalog.models import Price, Product
    from customers.models import Customer
    from projects.models import Project

    JournalLine.objects.filter(entry__project=project)._raw_delete(connection.alias)  # type: ignore[attr-defined]
    for model in (
        RevenueSchedule,
        RecognitionCursor,
        JournalEntry,
        BalanceTransaction,
        Refund,
        Payment,
        Invoice,
        Subscription,
        Customer,
        Price,
        Product,
    ):
        model.objects.filter(project=project)._raw_delete(connection.alias)  # type: ignore[attr-defined]
    Project.objects.filter(pk=project.pk).delete()


def _unsync_month(project: Any, now: datetime) -> None:
    """As if beat had not synced the schedules of the month closed: its invoices changed since the last sync,
    their schedules not yet written (the close writes them, and compares their recognition with the journal's)."""
    from billing.models import Invoice, RevenueSchedule

    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    RevenueSchedule.objects.filter(
        project=project, booked_on__gte=last_month.date(), booked_on__lt=this_month.date()
    ).delete()
    Invoice.objects.filter(project=project, paid_at__gte=last_month, paid_at__lt=this_month).update(
        updated_at=datetime.now(UTC)
    )
    _analyze()


def _close(slug: str, month: str, folder: str) -> tuple[float, str]:
    from django.core.management import call_command

    out = io.StringIO()
    started = time.perf_counter()
    call_command(
        "month_close", "--project", slug, "--month", month, "--no-sync", "--output-dir", folder, stdout=out
    )
    return time.perf_counter() - started, out.getvalue()


def run() -> None:
    from bench.setup import report
    from core.actors import Actor
    from core.ids import random_token
    from projects.services import projects as services

    now = datetime.now(UTC)
    closed = now.replace(day=1) - timedelta(days=1)
    month = f"{closed:%Y-%m}"  # last month: a month is closed once it has ended
    sides = {}
    for size in (FEW, SUBSCRIPTIONS):
        slug = f"bench-close-{random_token(8).lower()}"
        project, _, _ = services.project_create(actor=Actor.system("bench"), slug=slug, name=slug)
        seeding = time.perf_counter()
        _seed(project, size, now)
        print(f"seeded {size} subscriptions in {time.perf_counter() - seeding:.1f} s")
        sides[size] = project
    try:
        with tempfile.TemporaryDirectory() as folder:
            cold = {size: _close(project.slug, month, folder) for size, project in sides.items()}
            unsynced = {}
            for size, project in sides.items():
                _unsync_month(project, now)
                unsynced[size] = _close(project.slug, month, folder)[0]
                _age(project, now)
            warm = {
                size: statistics.median(_close(project.slug, month, folder)[0] for _ in range(ROUNDS))
                for size, project in sides.items()
            }
        summary = cold[SUBSCRIPTIONS][1].splitlines()
        print("\n".join(summary[:3]))
        base = cold[FEW][0]
        report(
            f"Month close (tie-out, revenue report, journal export), seconds; target ≤ {TARGET_SECONDS:.0f} s "
            f"at {SUBSCRIPTIONS}",
            [
                (f"cold close, {FEW} subscriptions (baseline)", cold[FEW][0], "s"),
                (f"cold close, {SUBSCRIPTIONS} subscriptions", cold[SUBSCRIPTIONS][0], "s"),
                (f"the month not yet synced, {FEW} subscriptions", unsynced[FEW], "s"),
                (f"the month not yet synced, {SUBSCRIPTIONS} subscriptions", unsynced[SUBSCRIPTIONS], "s"),
                (f"warm close, {FEW} subscriptions", warm[FEW], "s"),
                (f"warm close, {SUBSCRIPTIONS} subscriptions", warm[SUBSCRIPTIONS], "s"),
            ],
            base,
        )
        for case, seconds in (
            ("the month not yet synced", unsynced[SUBSCRIPTIONS]),
            ("synced by beat (warm)", warm[SUBSCRIPTIONS]),
            ("first close after the upgrade (cold)", cold[SUBSCRIPTIONS][0]),
        ):
            verdict = "meets" if seconds <= TARGET_SECONDS else "misses"
            print(
                f"{SUBSCRIPTIONS} subscriptions, {case}: {seconds:.1f} s, {verdict} the {TARGET_SECONDS:.0f} s target"
            )
    finally:
        for project in sides.values():
            _drop(project)
