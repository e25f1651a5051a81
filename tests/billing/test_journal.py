"""The double-entry journal: what each money movement posts, as the mirror learns it from Stripe (through the
official SDK on the emulator and Stripe's events), exactly once whatever arrives twice; reversals as entries of
their own; every entry balanced; the cash account equal to Stripe's balance transactions; the CSV export."""

import csv
import io
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from billing.models import BalanceTransaction, Drift, Invoice, JournalEntry, JournalLine, Payment, Refund
from billing.services.journal import journal_repair
from customers.models import Customer
from tests.billing.payment_factories import paid_credit_packs
from tests.billing.test_invoice_corrections import _open_invoice
from tests.e2e.test_subscription_lifecycle import _subscribe
from tests.stripe_emulator.payments_fixtures import control


def _entries(project) -> list[tuple[str, str, int, dict[str, int]]]:
    return [
        (e.kind, e.source, e.revision, {line.account: line.amount for line in e.lines.all()})
        for e in JournalEntry.objects.filter(project=project)
        .order_by("created_at", "id")
        .prefetch_related("lines")
    ]


def _balances(project) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for account, amount in JournalLine.objects.filter(entry__project=project).values_list(
        "account", "amount"
    ):
        sums[account] += amount
    return {account: total for account, total in sorted(sums.items()) if total}


def _sync(project) -> None:
    now = timezone.now()
    call_command(
        "tie_out",
        "--project",
        project.slug,
        "--start",
        (now - timedelta(days=1)).isoformat(),
        "--end",
        (now + timedelta(days=1)).isoformat(),
        stdout=io.StringIO(),
    )


def _every_event_again(project) -> None:
    """Every Stripe event stored for the project run through the handlers once more, and a reconciliation with fix:
    the same states by every path again."""
    call_command("replay_webhooks", "--status", "any", "--project", project.slug, stdout=io.StringIO())
    call_command("reconcile", "--project", project.slug, "--fix", stdout=io.StringIO())


def test_a_payment_its_refund_and_stripes_fee_post_once_and_cash_ties_out(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks
):
    paid = paid_credit_packs(api, tenant_a, stripe_sdk())
    stripe_webhooks.deliver()
    assert (
        api.post(f"/api/v1/payments/{paid['id']}/refund", {"amount": 500}, key=tenant_a.key).status_code
        == 200
    )
    stripe_webhooks.deliver()
    _sync(tenant_a.project)

    refund = Refund.objects.get()
    fee = BalanceTransaction.objects.get(type="charge")
    assert _entries(tenant_a.project) == [
        ("payment", paid["id"], 1, {"stripe_balance": 3000, "deferred_revenue": -3000}),
        ("refund", refund.stripe_refund_id, 1, {"refunds": 500, "stripe_balance": -500}),
        ("fee", fee.stripe_balance_transaction_id, 1, {"stripe_fees": 117, "stripe_balance": -117}),
    ]
    assert _balances(tenant_a.project) == {
        "deferred_revenue": -3000,
        "refunds": 500,
        "stripe_balance": 2383,
        "stripe_fees": 117,
    }
    # The cash account is Stripe's net, to the cent.
    assert _balances(tenant_a.project)["stripe_balance"] == sum(
        BalanceTransaction.objects.values_list("net", flat=True)
    )

    _every_event_again(tenant_a.project)
    _sync(tenant_a.project)

    assert JournalEntry.objects.count() == 3
    assert journal_repair(tenant_a.project.pk) == []
    assert not Drift.objects.filter(object_type="journal").exists()


def test_a_subscription_invoice_issued_and_paid_leaves_nothing_owed(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    created = _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.total, invoice.tax) == ("paid", 3000, 0)

    assert _entries(tenant_a.project) == [
        ("invoice", invoice.stripe_invoice_id, 1, {"receivables": 3000, "deferred_revenue": -3000}),
        ("payment", created["payment"], 1, {"stripe_balance": 3000, "receivables": -3000}),
    ]
    assert "receivables" not in _balances(tenant_a.project)
    _every_event_again(tenant_a.project)
    # Nothing posted twice; the reconciliation read Stripe's fee of the charge, posted once.
    assert [e[0] for e in _entries(tenant_a.project)] == ["invoice", "payment", "fee"]
    assert _balances(tenant_a.project)["stripe_balance"] == 3000 - 117


def test_a_voided_invoice_is_reversed_by_an_entry_of_its_own(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _open_invoice(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)
    issued = JournalEntry.objects.get(source=invoice.stripe_invoice_id)

    assert api.post(f"/api/v1/invoices/{invoice.pk}/void", {}, key=tenant_a.key).status_code == 200
    stripe_webhooks.deliver()

    assert [e for e in _entries(tenant_a.project) if e[1] == invoice.stripe_invoice_id] == [
        ("invoice", invoice.stripe_invoice_id, 1, {"receivables": 1500, "deferred_revenue": -1500}),
        ("invoice", invoice.stripe_invoice_id, 2, {"receivables": -1500, "deferred_revenue": 1500}),
    ]
    assert JournalEntry.objects.get(pk=issued.pk).effective_at == issued.effective_at  # never changed


def test_an_uncollectible_invoice_moves_what_is_owed_to_bad_debt(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    invoice = _open_invoice(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)

    marked = api.post(f"/api/v1/invoices/{invoice.pk}/mark_uncollectible", {}, key=tenant_a.key)
    assert marked.status_code == 200, marked.content
    stripe_webhooks.deliver()

    assert [e for e in _entries(tenant_a.project) if e[1] == invoice.stripe_invoice_id] == [
        ("invoice", invoice.stripe_invoice_id, 1, {"receivables": 1500, "deferred_revenue": -1500}),
        ("uncollectible", invoice.stripe_invoice_id, 1, {"bad_debt": 1500, "receivables": -1500}),
    ]


def test_a_credit_note_to_the_customer_balance_then_its_use_on_the_next_invoice(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    paid = Invoice.objects.get()
    response = api.post(
        f"/api/v1/invoices/{paid.pk}/credit_notes",
        {"lines": [{"invoice_line": 0, "amount": 700}], "credit_amount": 700},
        key=tenant_a.key,
    )
    assert response.status_code == 201, response.content
    stripe_webhooks.deliver()
    note = response.json()

    [posted] = [e for e in _entries(tenant_a.project) if e[0] == "credit_note"]
    assert posted[2:] == (1, {"refunds": 700, "customer_balance": -700})
    assert _balances(tenant_a.project)["customer_balance"] == -700

    # The next invoice takes the 7.00 from the balance: the customer owes 8.00 of its 15.00.
    stripe_customer = Customer.objects.get(project=tenant_a.project).stripe_customer_id
    from tests.billing.stripe_invoices import open_invoice_at_stripe

    made = open_invoice_at_stripe(stripe_sdk(), stripe_customer, 1500)
    stripe_webhooks.deliver()
    following = Invoice.objects.get(stripe_invoice_id=made)
    assert (following.total, following.amount_due, following.balance_applied) == (1500, 800, 700)
    assert [e for e in _entries(tenant_a.project) if e[1] == made] == [
        ("invoice", made, 1, {"receivables": 800, "customer_balance": 700, "deferred_revenue": -1500})
    ]
    assert "customer_balance" not in _balances(tenant_a.project)
    assert note["credit_amount"] == 700


def test_a_won_dispute_is_reversed_and_its_fee_stays(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk, card="pm_card_createDispute")
    stripe_webhooks.deliver()
    dispute = sdk.v1.disputes.list({"payment_intent": paid["stripe_payment_intent_id"]}).data[0]
    control(stripe_emulator, f"/_emulator/disputes/{dispute.id}/resolve", outcome="won")
    stripe_webhooks.deliver()
    _sync(tenant_a.project)

    disputes = [e for e in _entries(tenant_a.project) if e[0] == "dispute"]
    assert disputes == [
        ("dispute", paid["id"], 1, {"disputes": 3000, "stripe_balance": -3000}),
        ("dispute", paid["id"], 2, {"disputes": -3000, "stripe_balance": 3000}),
    ]
    fees = sorted(e[3]["stripe_fees"] for e in _entries(tenant_a.project) if e[0] == "fee")
    assert fees == [117, 1500]  # the charge's, and the dispute's (not returned on a win)
    assert (
        _balances(tenant_a.project)["stripe_balance"]
        == 3000 - 117 - 1500
        == sum(BalanceTransaction.objects.values_list("net", flat=True))
    )


def test_a_refund_that_fails_later_is_reversed(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    paid = paid_credit_packs(api, tenant_a, stripe_sdk(), card="pm_card_refundFail")
    stripe_webhooks.deliver()
    assert (
        api.post(f"/api/v1/payments/{paid['id']}/refund", {"amount": 1000}, key=tenant_a.key).status_code
        == 200
    )
    stripe_webhooks.deliver()
    refund = Refund.objects.get()
    stripe_emulator.advance(61)  # Stripe's "some time later"
    stripe_webhooks.deliver()
    _sync(tenant_a.project)

    assert Refund.objects.get().status == "failed"
    assert [e for e in _entries(tenant_a.project) if e[0] == "refund"] == [
        ("refund", refund.stripe_refund_id, 1, {"refunds": 1000, "stripe_balance": -1000}),
        ("refund", refund.stripe_refund_id, 2, {"refunds": -1000, "stripe_balance": 1000}),
    ]
    assert _balances(tenant_a.project)["stripe_balance"] == sum(
        BalanceTransaction.objects.values_list("net", flat=True)
    )
    assert Payment.objects.get(pk=paid["id"]).amount_refunded == 0


def test_the_export_is_the_journal_in_the_chart_of_accounts(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks
):
    paid = paid_credit_packs(api, tenant_a, stripe_sdk())
    stripe_webhooks.deliver()
    _sync(tenant_a.project)
    out = io.StringIO()
    call_command(
        "journal_export",
        "--project",
        tenant_a.project.slug,
        "--month",
        timezone.now().strftime("%Y-%m"),
        stdout=out,
    )

    rows = list(csv.reader(io.StringIO(out.getvalue())))

    assert rows[0] == [
        "entry",
        "posted_at",
        "effective_at",
        "kind",
        "source",
        "revision",
        "currency",
        "account_code",
        "account",
        "debit",
        "credit",
    ]
    assert sorted((r[3], r[4] == paid["id"], r[7], r[8], r[9], r[10]) for r in rows[1:]) == [
        ("fee", False, "1010", "Cash at Stripe", "", "1.17"),
        ("fee", False, "6100", "Stripe fees", "1.17", ""),
        ("payment", True, "1010", "Cash at Stripe", "30.00", ""),
        ("payment", True, "2100", "Deferred revenue", "", "30.00"),
    ]


def test_the_parquet_export_is_the_csv_export_typed(
    api, tenant_a, tenant_b, catalog, stripe_sdk, stripe_webhooks, tmp_path, capsys
):
    import pyarrow as pa
    import pyarrow.parquet as pq

    paid = paid_credit_packs(api, tenant_a, stripe_sdk())
    stripe_webhooks.deliver()
    _sync(tenant_a.project)
    month = timezone.now().strftime("%Y-%m")
    path = tmp_path / "journal.parquet"
    out = io.StringIO()
    call_command("journal_export", "--project", tenant_a.project.slug, "--month", month, stdout=out)

    call_command(
        "journal_export",
        "--project",
        tenant_a.project.slug,
        "--month",
        month,
        "--format",
        "parquet",
        "--output",
        str(path),
    )

    assert capsys.readouterr().err == f"Wrote 4 journal line(s) of alpha to {path}.\n"
    table = pq.read_table(path)
    [header, *lines] = csv.reader(io.StringIO(out.getvalue()))
    assert table.schema.names == header
    assert [str(table.schema.field(name).type) for name in ("posted_at", "revision", "debit", "credit")] == [
        "timestamp[us, tz=UTC]",
        "int32",
        "decimal128(38, 3)",
        "decimal128(38, 3)",
    ]
    # Row for row the CSV's, the times and the amounts as values.
    expected = [
        [
            entry,
            posted,
            effective,
            kind,
            source,
            int(revision),
            currency,
            code,
            account,
            Decimal(debit) if debit else None,
            Decimal(credit) if credit else None,
        ]
        for entry, posted, effective, kind, source, revision, currency, code, account, debit, credit in lines
    ]
    rows = [
        [value.isoformat() if isinstance(value, datetime) else value for value in row.values()]
        for row in table.to_pylist()
    ]
    assert rows == expected
    assert sorted((r[3], r[4] == paid["id"], r[7], r[9], r[10]) for r in rows) == [
        ("fee", False, "1010", None, Decimal("1.170")),
        ("fee", False, "6100", Decimal("1.170"), None),
        ("payment", True, "1010", Decimal("30.000"), None),
        ("payment", True, "2100", None, Decimal("30.000")),
    ]
    # Another project's month: the schema alone. Parquet needs a file.
    call_command(
        "journal_export",
        "--project",
        tenant_b.project.slug,
        "--month",
        month,
        "--format",
        "parquet",
        "--output",
        str(tmp_path / "theirs.parquet"),
    )
    assert pq.read_table(tmp_path / "theirs.parquet").num_rows == 0
    assert isinstance(pq.read_table(tmp_path / "theirs.parquet"), pa.Table)
    with pytest.raises(CommandError, match="--output"):
        call_command("journal_export", "--project", "alpha", "--month", month, "--format", "parquet")


def test_an_entry_is_never_changed_or_removed(api, tenant_a, catalog, stripe_sdk, stripe_webhooks):
    paid_credit_packs(api, tenant_a, stripe_sdk())
    stripe_webhooks.deliver()
    entry = JournalEntry.objects.get()
    line = entry.lines.first()

    for attempt in (entry.save, entry.delete, line.save, line.delete):
        with pytest.raises(ValueError, match="never"):
            attempt()
    assert _balances(tenant_a.project) == {"deferred_revenue": -3000, "stripe_balance": 3000}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgresql_refuses_a_changed_line_and_an_unbalanced_entry(tenant_a):
    assert connection.vendor == "postgresql"
    entry = JournalEntry.objects.create(
        project=tenant_a.project,
        kind="fee",
        source="txn_1",
        revision=1,
        currency="usd",
        effective_at=timezone.now(),
    )
    JournalLine.objects.bulk_create(
        [
            JournalLine(entry=entry, account="stripe_fees", amount=5),
            JournalLine(entry=entry, account="stripe_balance", amount=-5),
        ]
    )

    with pytest.raises(DatabaseError, match="never changed"), transaction.atomic():
        JournalLine.objects.filter(entry=entry).update(amount=7)
    with transaction.atomic():
        other = JournalEntry.objects.create(
            project=tenant_a.project,
            kind="fee",
            source="txn_2",
            revision=1,
            currency="usd",
            effective_at=timezone.now(),
        )
        JournalLine.objects.create(entry=other, account="stripe_fees", amount=5)
        with pytest.raises(DatabaseError, match="does not balance"):
            connection.cursor().execute("SET CONSTRAINTS ALL IMMEDIATE")
        transaction.set_rollback(True)
    with pytest.raises(IntegrityError), transaction.atomic():
        JournalEntry.objects.create(
            project=tenant_a.project,
            kind="fee",
            source="txn_1",
            revision=1,
            currency="usd",
            effective_at=timezone.now(),
        )
    assert sorted(JournalLine.objects.values_list("account", "amount")) == [
        ("stripe_balance", -5),
        ("stripe_fees", 5),
    ]
    assert list(JournalEntry.objects.values_list("source", flat=True)) == ["txn_1"]


def test_a_reconciliation_posts_the_journal_of_rows_written_before_it_existed(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks
):
    """An upgrade: the payment and its refund were mirrored before the journal; the next reconciliation posts
    them, once, and says so as drift of `journal` movements, fixed."""
    paid = paid_credit_packs(api, tenant_a, stripe_sdk())
    assert (
        api.post(f"/api/v1/payments/{paid['id']}/refund", {"amount": 500}, key=tenant_a.key).status_code
        == 200
    )
    stripe_webhooks.deliver()
    JournalEntry.objects.all().delete()  # as before the upgrade (a queryset's delete: the rows' guard is not asked)
    refund = Refund.objects.get()

    call_command("reconcile", "--project", tenant_a.project.slug, stdout=io.StringIO())

    drifts = sorted(
        (d.object_type, d.field, d.stripe_id, d.status) for d in Drift.objects.filter(object_type="journal")
    )
    # Stripe's fee is posted as its balance transaction is first read (by this run), not as a repair.
    assert drifts == [
        ("journal", "payment", paid["id"], "fixed"),
        ("journal", "refund", refund.stripe_refund_id, "fixed"),
    ]
    assert _balances(tenant_a.project) == {
        "deferred_revenue": -3000,
        "refunds": 500,
        "stripe_balance": 2383,
        "stripe_fees": 117,
    }
    call_command("reconcile", "--project", tenant_a.project.slug, stdout=io.StringIO())
    assert Drift.objects.filter(object_type="journal").count() == 2
    assert JournalEntry.objects.count() == 3
