"""Reconciliation runs and the drift they found, and Stripe's balance transactions of each project's money that
the tie-out compares with, read-only (runs are started from the project page or the `reconcile` command; balance
transactions are read by both and by `tie_out`).
"""

import re
from datetime import UTC, datetime
from typing import Any

from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from billing.models import BalanceTransaction, Drift, Invoice, Payment, ReconciliationRun
from core.admin_columns import money_column, read_only_page
from core.admin_display import ViewOnly, column, status_column
from core.admin_generics import ModelAdmin, TabularInline
from core.money import money_format

# The fields a reconciliation compares that are money (minor units of the local row's currency).
MONEY_FIELDS = frozenset(
    {"amount_refunded", "subtotal", "total", "amount_due", "amount_paid", "amount_remaining"}
)


def _with_currency(queryset: QuerySet[Drift]) -> QuerySet[Drift]:
    """Each drift with the currency of the local payment or invoice it is about (one query for any number)."""
    return queryset.annotate(
        money_currency=Coalesce(
            Subquery(Payment.objects.filter(pk=OuterRef("local_id")).values("currency")[:1]),
            Subquery(Invoice.objects.filter(pk=OuterRef("local_id")).values("currency")[:1]),
        )
    )


def _as_time(raw: str) -> str | None:
    """A compared time ("2026-05-20 10:00:00+00:00", as recorded) in UTC to the second, or None for another value."""
    if not _TIME.match(raw):
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")
_TIE_OUT_FIELD = re.compile(r"^[a-z_]+ \(([a-z]{3})\)$")


def _drift_value(field: str, label: str) -> Any:
    """A drift's local or Stripe value, as money when the compared field is (e.g. "$10.00", not "1000"), and a time
    in UTC to the second ("2026-05-20 10:00:00 UTC": seconds matter when two times differ)."""

    @admin.display(description=label)
    def value(drift: Drift) -> str:
        raw: str = getattr(drift, field)
        currency = getattr(drift, "money_currency", None)
        if drift.field in MONEY_FIELDS and currency and raw.lstrip("-").isdigit():
            return money_format(int(raw), currency)
        tied = _TIE_OUT_FIELD.match(drift.field) if drift.object_type == "balance_transaction" else None
        if (
            tied and raw.lstrip("-").isdigit()
        ):  # a tie-out's money, its currency in the field ("refund (usd)")
            return money_format(int(raw), tied.group(1))
        return _as_time(raw) or raw

    value.__name__ = f"{field}_shown"
    return value


here = _drift_value("local_value", "Here")
at_stripe = _drift_value("stripe_value", "At Stripe")


class DriftInline(TabularInline[Drift, ReconciliationRun]):
    model = Drift
    extra = 0
    can_delete = False
    readonly_fields = [
        "project",
        "kind",
        "object_type",
        "stripe_id",
        "local_id",
        "field",
        here,
        at_stripe,
        "status",
        "detail",
    ]
    exclude = ["local_value", "stripe_value"]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Drift]:
        return _with_currency(super().get_queryset(request))


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ViewOnly, ModelAdmin[ReconciliationRun]):
    list_display = [
        column("id", "ID"),
        "project",
        status_column(),
        column("fix", "Fix", boolean=True),
        "checked",
        column("drift_count", "Drift"),
        column("fixed_count", "Fixed"),
        column("started_at", "Started"),
        column("finished_at", "Finished"),
    ]
    list_filter = ["status", "project", "fix"]
    list_select_related = ["project"]
    readonly_fields = [field.name for field in ReconciliationRun._meta.fields]
    inlines = [DriftInline]


@admin.register(Drift)
class DriftAdmin(ViewOnly, ModelAdmin[Drift]):
    ordering = ("-run__started_at", "-pk")  # a drift has no time of its own: its run's
    list_display = [
        "run",
        "project",
        "kind",
        column("object_type", "Object"),
        column("stripe_id", "Stripe ID"),
        "field",
        here,
        at_stripe,
        status_column(),
    ]
    list_filter = ["status", "kind", "object_type", "project"]
    search_fields = ["stripe_id", "local_id"]
    list_select_related = ["run", "project"]
    readonly_fields = [
        *(field.name for field in Drift._meta.fields if field.name not in ("local_value", "stripe_value")),
        here,
        at_stripe,
    ]
    exclude = ["local_value", "stripe_value"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Drift]:
        return _with_currency(super().get_queryset(request))


def _category(txn: BalanceTransaction) -> str:
    """Stripe's reporting category in words ("Dispute reversal")."""
    return txn.reporting_category.replace("_", " ").capitalize()


def _fees(txn: BalanceTransaction) -> str:
    """Stripe's fee parts in words with their money ("Stripe processing fees: $0.87")."""
    parts = [
        f"{part.get('description') or 'Fee'}: {money_format(int(part.get('amount') or 0), txn.currency)}"
        for part in txn.fee_details
        if isinstance(part, dict)
    ]
    return "; ".join(parts) or "-"


@admin.register(BalanceTransaction)
class BalanceTransactionAdmin(ViewOnly, ModelAdmin[BalanceTransaction]):
    ordering = ("-created_at", "-pk")
    list_display = [
        column("stripe_balance_transaction_id", "Stripe ID"),
        "project",
        column("created_at", "Created at Stripe"),
        "category",
        money_column("amount", "Gross"),
        money_column("fee", "Fee"),
        money_column("net", "Net"),
        column("source", "Source"),
        status_column(),
    ]
    list_filter = ["project", "reporting_category", "currency", "status"]
    search_fields = ["stripe_balance_transaction_id", "source", "payment_intent"]
    list_select_related = ["project"]
    readonly_fields, exclude = read_only_page(
        BalanceTransaction,
        money=("amount", "fee", "net"),
        hidden=("type",),  # the category says it in words
        shown_as={"reporting_category": _category, "fee_details": _fees},
        labels={"reporting_category": "Category", "amount": "Gross", "fee_details": "Fees"},
    )

    @admin.display(description="Category", ordering="reporting_category")
    def category(self, txn: BalanceTransaction) -> str:
        return _category(txn)
