"""Credit notes in the back office, read-only; issuing one (an action on an invoice) and voiding one are audited
actions that ask for a reason, sent to Stripe through the same services as the tenant API.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from billing.apis.credit_notes import REASONS
from billing.models import CreditNote, Invoice
from billing.services.credit_notes import credit_note_create, credit_note_void
from core.actors import Actor
from core.admin_actions import ReasonForm, form_operation, has_perm, reason_action
from core.admin_columns import money_column, read_only_page
from core.admin_display import NEWEST_FIRST, ViewOnly, column, status_column, unix_time_text
from core.admin_generics import ModelAdmin
from core.admin_lists import LargeListAdmin
from core.errors import InvalidRequest
from core.ids import random_token
from core.money import money_format, money_parse

# Stripe's `type` of a credit note, in words.
_TYPES = {
    "pre_payment": "Before payment (lowered the amount due)",
    "post_payment": "After payment (given back)",
    "mixed": "Both (lowered the amount due, then gave back)",
}
# Stripe's reasons for a credit note, in words.
_REASONS = {
    "duplicate": "Duplicate",
    "fraudulent": "Fraudulent",
    "order_change": "Order change",
    "product_unsatisfactory": "Product unsatisfactory",
}


@admin.register(CreditNote)
class CreditNoteAdmin(LargeListAdmin, ViewOnly, ModelAdmin[CreditNote]):
    ordering = NEWEST_FIRST
    list_display = [
        "number",
        "project",
        "customer",
        "invoice",
        status_column(),
        money_column("total"),
        "type_text",
        column("created_at", "Created"),
    ]
    list_filter = ["project", "status"]
    search_fields = ["number", "stripe_credit_note_id"]
    list_select_related = ["project", "customer", "invoice"]
    readonly_fields, exclude = read_only_page(
        CreditNote,
        money=(
            "amount",
            "subtotal",
            "total",
            "pre_payment_amount",
            "post_payment_amount",
            "refund_amount",
            "credit_amount",
            "out_of_band_amount",
        ),
        shown_as={
            "type": lambda note: _TYPES.get(note.type, note.type) or "-",
            "reason": lambda note: _REASONS.get(note.reason, note.reason) or "-",
            "stripe_event_created": lambda note: unix_time_text(note.stripe_event_created),
        },
        labels={"stripe_event_created": "Newest Stripe event applied"},
    )
    actions = ["void"]

    @admin.display(description="Type", ordering="type")
    def type_text(self, note: CreditNote) -> str:
        return _TYPES.get(note.type, note.type) or "-"

    @admin.action(description="Void (final; not one that refunded money)", permissions=["correct"])
    def void(self, request: HttpRequest, queryset: QuerySet[CreditNote]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Void credit notes", perform=_void)

    def has_correct_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "billing.correct_invoice")


def _void(note: CreditNote, data: dict[str, Any], actor: Actor) -> str:
    result = credit_note_void(credit_note=note, actor=actor, reason=data["reason"])
    return f"status {result.status}"


class CreditNoteForm(ReasonForm):
    # Drawn when the form is shown: submitting the same page again (a double click, a retry after an error)
    # continues the same credit notes instead of issuing them twice.
    operation = forms.RegexField(
        regex=r"^[A-Za-z0-9]{24}$", required=False, widget=forms.HiddenInput, initial=lambda: random_token(24)
    )
    amount = forms.CharField(
        max_length=30,
        help_text="In the invoice's currency, as on its page: 25.00 credits $25.00 (¥ has no decimals).",
    )
    destination = forms.ChoiceField(
        label="Give back as",
        choices=[
            ("refund", "A refund to the card that paid"),
            ("credit", "A credit to the customer's balance (their next invoices)"),
            ("out_of_band", "Settled outside Stripe"),
        ],
        initial="refund",
        help_text="What the invoice still owes is lowered first; only the rest is given back so.",
    )
    credit_reason = forms.ChoiceField(
        label="Reason on the credit note",
        required=False,
        choices=[("", "-"), *((value, _REASONS[value]) for value in REASONS)],
    )
    memo = forms.CharField(
        required=False, max_length=500, help_text="Shown to the customer on the credit note."
    )

    def clean_amount(self) -> str:
        amount: str = self.cleaned_data["amount"].strip()
        try:
            money_parse(amount, "kwd")  # the form, for any currency; the invoice's decimals are checked next
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return amount


def _issue(invoice: Invoice, data: dict[str, Any], actor: Actor) -> str:
    try:
        amount = money_parse(data["amount"], invoice.currency)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="amount") from exc
    if amount == 0:
        raise InvalidRequest("A credit note of nothing.", param="amount")
    # What the invoice still owes (as mirrored) is lowered first; the rest goes where the operator said.
    given_back = max(0, amount - invoice.amount_remaining)
    operation = form_operation(
        data.get("operation") or "", action="credit_note.requested", target_id=invoice.pk
    )
    note = credit_note_create(
        invoice=invoice,
        actor=actor,
        amount=amount,
        reason=data.get("credit_reason") or "",
        memo=data.get("memo") or "",
        operation=operation,
        audit_reason=data["reason"],
        refund_amount=given_back if data["destination"] == "refund" else 0,
        credit_amount=given_back if data["destination"] == "credit" else 0,
        out_of_band_amount=given_back if data["destination"] == "out_of_band" else 0,
    )
    return f"credit note {note} of {money_format(note.total, note.currency)}"


def issue_credit_note(
    modeladmin: "admin.ModelAdmin[Any]", request: HttpRequest, queryset: QuerySet[Invoice]
) -> TemplateResponse | None:
    """The invoice action "Issue a credit note"."""
    return reason_action(
        modeladmin, request, queryset, title="Issue credit notes", perform=_issue, form_class=CreditNoteForm
    )
