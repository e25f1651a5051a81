"""Editing a draft invoice's lines in the back office: adding a line, and changing or removing a line of an invoice
item, each an audited action that asks for a reason, sent to Stripe through the same services as the tenant API
(`billing.services.invoice_lines`).

Like issuing a credit note (`credit_notes`), each form draws an operation token when it is shown: the same page
submitted again (a double click, a retry after an error) continues the same edit at Stripe, audited once, instead of
adding a second line. Amounts are typed in major units of the invoice's currency ("25.00"; "-5.00" is a credit).
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from billing.models import Invoice
from billing.services.invoice_lines import (
    ADD,
    REMOVE,
    UPDATE,
    invoice_line_add,
    invoice_line_remove,
    invoice_line_update,
)
from core.actors import Actor
from core.admin_actions import ReasonForm, form_operation, reason_action
from core.errors import InvalidRequest
from core.ids import random_token
from core.money import money_format, money_parse

ADD_TITLE = "Add a line to draft invoices"
EDIT_TITLE = "Change or remove a draft's line"
# The form's way of naming a line: the invoice's id and Stripe's id of the line ("inv_…:il_…").
_SEPARATOR = ":"


def _operation_field() -> forms.Field:
    # Drawn when the form is shown: submitting the same page again continues the same edit instead of making it
    # twice (one line added at Stripe, one audit row).
    return forms.RegexField(
        regex=r"^[A-Za-z0-9]{24}$", required=False, widget=forms.HiddenInput, initial=lambda: random_token(24)
    )


def _signed_amount(text: str, currency: str) -> int:
    """An amount typed in major units, a leading "-" making it a credit: `_signed_amount("-5.00", "usd") == -500`.
    Raises ValueError for anything `money_parse` refuses, and for nothing (zero)."""
    cleaned = text.strip()
    negative = cleaned.startswith("-")
    amount = money_parse(cleaned.removeprefix("-").strip(), currency)
    if amount == 0:
        raise ValueError("An amount of nothing: type an amount such as 25.00 (or -5.00 for a credit).")
    return -amount if negative else amount


def _clean_amount(text: str) -> str:
    """The form's check of a typed amount, for any currency; the invoice's decimals are checked when it is used."""
    amount = text.strip()
    if amount:
        try:
            _signed_amount(amount, "kwd")
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
    return amount


def _invoice_amount(text: str, invoice: Invoice) -> int:
    try:
        return _signed_amount(text, invoice.currency)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="amount") from exc


def _total(invoice: Invoice) -> str:
    return money_format(invoice.total, invoice.currency)


# --- Adding a line ------------------------------------------------------------------------------------------------


class LineAddForm(ReasonForm):
    field_order = ["amount", "description", "reason"]

    operation = _operation_field()
    amount = forms.CharField(
        max_length=30,
        help_text="In the invoice's currency, as on its page: 25.00 adds $25.00; -5.00 is a credit of $5.00.",
    )
    description = forms.CharField(max_length=500, help_text="Shown to the customer on the invoice's line.")

    def clean_amount(self) -> str:
        return _clean_amount(self.cleaned_data["amount"])


def _add(invoice: Invoice, data: dict[str, Any], actor: Actor) -> str:
    result = invoice_line_add(
        invoice=invoice,
        actor=actor,
        amount=_invoice_amount(data["amount"], invoice),
        description=data["description"],
        reason=data["reason"],
        operation=form_operation(
            data.get("operation") or "", action=ADD, target_id=invoice.pk, scope=f"{ADD}:"
        ),
    )
    return f"line added; total {_total(result)}"


def add_invoice_line(
    modeladmin: "admin.ModelAdmin[Any]", request: HttpRequest, queryset: QuerySet[Invoice]
) -> TemplateResponse | None:
    """The invoice action "Add a line (drafts)": the same line added to each selected draft."""
    return reason_action(modeladmin, request, queryset, title=ADD_TITLE, perform=_add, form_class=LineAddForm)


# --- Changing or removing a line ----------------------------------------------------------------------------------


class LineField(forms.ChoiceField):
    """The line chosen: one offered, or a line of a selected invoice that is no longer offered because the mirror
    moved since the page was drawn (the same page submitted again after its removal, the invoice finalized
    meanwhile): the service decides on Stripe's invoice (the removal continued, or the operator told why not)."""

    invoice_ids: frozenset[str] = frozenset()

    def valid_value(self, value: Any) -> bool:
        invoice_id, _, line_id = str(value).partition(_SEPARATOR)
        return super().valid_value(value) or (invoice_id in self.invoice_ids and bool(line_id))


class LineEditForm(ReasonForm):
    """The form of one request: `line` offers the selected drafts' lines of invoice items (`line_edit_form`)."""

    field_order = ["line", "what", "amount", "description", "reason"]

    operation = _operation_field()
    line = LineField(choices=[])
    what = forms.ChoiceField(
        label="Do",
        choices=[("change", "Change it"), ("remove", "Remove it")],
        initial="change",
        widget=forms.RadioSelect,
    )
    amount = forms.CharField(
        label="New amount",
        required=False,
        max_length=30,
        help_text="In the invoice's currency: 20.00 makes the line $20.00; -5.00 a credit. Empty: unchanged.",
    )
    description = forms.CharField(
        label="New description", required=False, max_length=500, help_text="Empty: unchanged."
    )

    def clean_amount(self) -> str:
        return _clean_amount(self.cleaned_data["amount"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        changes = data.get("amount") or data.get("description")
        if data.get("what") == "change" and not changes and "amount" not in self.errors:
            raise forms.ValidationError("A change needs a new amount, a new description, or both.")
        if data.get("what") == "remove" and changes:
            raise forms.ValidationError(
                "A removed line takes no new amount or description: choose “Change it”, or leave them empty."
            )
        return data


def line_choices(invoices: list[Invoice]) -> list[tuple[str, str]]:
    """The lines an operator may change or remove among `invoices`: the lines of invoice items of the drafts
    (a subscription's lines follow their subscription), as ("inv_…:il_…", "INV-0001 · Setup · $15.00")."""
    return [
        (
            f"{invoice.pk}{_SEPARATOR}{line['stripe_line_id']}",
            " · ".join(
                (
                    str(invoice),  # its number; a draft has none yet, so its id
                    line.get("description") or "line",
                    money_format(int(line.get("amount") or 0), line.get("currency") or invoice.currency),
                )
            ),
        )
        for invoice in invoices
        if invoice.status == "draft"
        for line in invoice.lines or []
        if line.get("type") == "invoice_item" and line.get("stripe_line_id")
    ]


def line_edit_form(invoices: list[Invoice], choices: list[tuple[str, str]]) -> type[LineEditForm]:
    """The edit form of one request, offering `choices` among the lines of `invoices` (`reason_action` makes it
    with or without the POST)."""

    class Form(LineEditForm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            line = self.fields["line"]
            assert isinstance(line, LineField)
            # One line is offered chosen; among several, the operator picks one (nothing is chosen for them).
            line.choices = choices if len(choices) == 1 else [("", "Choose a line"), *choices]
            line.invoice_ids = frozenset(invoice.pk for invoice in invoices)

    return Form


def _chosen(data: dict[str, Any]) -> tuple[str, str]:
    invoice_id, _, line_id = str(data["line"]).partition(_SEPARATOR)
    return invoice_id, line_id


def _edit(invoice: Invoice, data: dict[str, Any], actor: Actor) -> str:
    invoice_id, line_id = _chosen(data)
    if invoice.pk != invoice_id:  # not reached: the action runs on the chosen line's invoice only
        raise InvalidRequest("The chosen line is not this invoice's.", param="line")
    token = data.get("operation") or ""
    if data["what"] == "remove":
        removed = invoice_line_remove(
            invoice=invoice,
            line_id=line_id,
            actor=actor,
            reason=data["reason"],
            operation=form_operation(token, action=REMOVE, target_id=invoice.pk, scope=f"{REMOVE}:"),
        )
        return f"line removed; total {_total(removed)}"
    changed = invoice_line_update(
        invoice=invoice,
        line_id=line_id,
        actor=actor,
        amount=_invoice_amount(data["amount"], invoice) if data.get("amount") else None,
        description=data.get("description") or None,
        reason=data["reason"],
        operation=form_operation(token, action=UPDATE, target_id=invoice.pk, scope=f"{UPDATE}:"),
    )
    return f"line changed; total {_total(changed)}"


def edit_invoice_line(
    modeladmin: "admin.ModelAdmin[Any]", request: HttpRequest, queryset: QuerySet[Invoice]
) -> TemplateResponse | None:
    """The invoice action "Change or remove a draft's line": one line, chosen among the selected drafts' lines of
    invoice items, changed or removed on its own invoice (the others selected are left as they are)."""
    invoices = list(queryset)
    choices = line_choices(invoices)
    if not choices and "apply" not in request.POST:
        modeladmin.message_user(
            request,
            "No line to change: none of the selected invoices is a draft with a line of an invoice item (a "
            "subscription's lines follow the subscription; a finalized invoice is corrected by a credit note).",
            messages.WARNING,
        )
        return None
    form_class = line_edit_form(invoices, choices)
    if "apply" in request.POST:
        form = form_class(request.POST)
        if form.is_valid():
            invoice_id, _line_id = _chosen(form.cleaned_data)
            queryset = queryset.filter(pk=invoice_id)
    return reason_action(
        modeladmin, request, queryset, title=EDIT_TITLE, perform=_edit, form_class=form_class
    )
