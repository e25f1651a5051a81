"""The double-entry journal in the back office, read-only: its entries are posted by the services as the mirror
changes (billing.services.journal) and never edited; each entry's lines show the account and the debit or credit
as money."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from billing.models import ACCOUNT_CODES, Account, EntryKind, JournalEntry, JournalLine
from core.admin_display import ViewOnly, column
from core.admin_generics import ModelAdmin, TabularInline
from core.money import money_format


def _side(line: JournalLine, debit: bool) -> str:
    amount = line.amount if debit else -line.amount
    return money_format(amount, line.entry.currency) if amount > 0 else ""


class JournalLineInline(TabularInline[JournalLine, JournalEntry]):
    model = JournalLine
    extra = 0
    can_delete = False
    fields = ["account_name", "debit", "credit"]
    readonly_fields = ["account_name", "debit", "credit"]
    ordering = ("account",)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[JournalLine]:
        return super().get_queryset(request).select_related("entry")

    @admin.display(description="Account")
    def account_name(self, line: JournalLine) -> str:
        return f"{ACCOUNT_CODES[Account(line.account)]} {Account(line.account).label}"

    @admin.display(description="Debit")
    def debit(self, line: JournalLine) -> str:
        return _side(line, debit=True)

    @admin.display(description="Credit")
    def credit(self, line: JournalLine) -> str:
        return _side(line, debit=False)


@admin.register(JournalEntry)
class JournalEntryAdmin(ViewOnly, ModelAdmin[JournalEntry]):
    ordering = ("-created_at", "-pk")
    list_display = [
        column("id", "ID"),
        "project",
        "kind_name",
        column("source", "Object"),
        "revision",
        column("effective_at", "Effective"),
        column("created_at", "Posted"),
    ]
    list_filter = ["project", "kind", "currency"]
    search_fields = ["id", "source"]
    list_select_related = ["project"]
    readonly_fields = [
        "id",
        "project",
        "kind_name",
        "source",
        "revision",
        "currency",
        "effective_at",
        "created_at",
    ]
    exclude = ["kind"]
    inlines = [JournalLineInline]

    @admin.display(description="Kind", ordering="kind")
    def kind_name(self, entry: JournalEntry) -> str:
        return str(EntryKind(entry.kind).label)
