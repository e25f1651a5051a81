"""Subscriptions and invoices in the back office, read-only; cancelling and resuming a subscription, voiding an
invoice, marking it uncollectible, issuing a credit note of it (`credit_notes`), and adding, changing or removing a
draft's line (`invoice_lines`) are audited actions that ask for a reason, sent to Stripe through the same services
as the tenant API.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from billing.admin.credit_notes import issue_credit_note
from billing.admin.invoice_lines import add_invoice_line, edit_invoice_line
from billing.admin.rerating import DraftReratingPages
from billing.models import Invoice, Subscription
from billing.services import revenue_figures
from billing.services.invoice_corrections import invoice_mark_uncollectible, invoice_void
from billing.services.invoices import INVOICE_RANK
from billing.services.subscription_cancel import subscription_cancel, subscription_resume
from catalog.selectors import currencies_known
from core.actors import Actor
from core.admin_actions import ReasonForm, has_perm, reason_action
from core.admin_columns import (
    billing_reason_text,
    invoice_lines,
    invoice_period_column,
    invoice_period_end,
    invoice_period_start,
    money_column,
    read_only_page,
    subscription_discount,
)
from core.admin_display import (
    NEWEST_FIRST,
    ViewOnly,
    column,
    status_badge,
    status_column,
    status_label,
    unix_time_text,
)
from core.admin_generics import ModelAdmin
from core.admin_lists import LargeListAdmin, known_values_filter
from core.money import money_format

_NEWEST_EVENT_LABEL = {"stripe_event_created": "Newest Stripe event applied"}


def _newest_event(row: Subscription | Invoice) -> str:
    return unix_time_text(row.stripe_event_created)


def _mrr_counted(subscription: Subscription) -> str:
    """What the subscription counts in MRR (millionths of a minor unit a month) as money: "$122.50 a month"."""
    if not subscription.mrr_currency:
        return "-"  # not live: it counts nothing
    minor_units = revenue_figures.mrr_minor_units(subscription.mrr_counted)
    return f"{money_format(minor_units, subscription.mrr_currency)} a month"


def _newest_schedule_event(subscription: Subscription) -> str:
    return unix_time_text(subscription.schedule_event_created)


def _invoice_status(invoice: Invoice) -> str:
    return status_badge(invoice.status, status_label(Invoice._meta.get_field("status"), invoice.status))


def _invoice_status_label(status: str) -> str:
    """An invoice's status (Stripe's word, no choices) named as its badge names it: "uncollectible" → "Uncollectible"."""
    return status_label(Invoice._meta.get_field("status"), status)


@admin.register(Subscription)
class SubscriptionAdmin(LargeListAdmin, ViewOnly, DraftReratingPages, ModelAdmin[Subscription]):
    ordering = NEWEST_FIRST
    list_display = [
        column("id", "ID"),
        "project",
        "customer",
        "product",
        "price",
        status_column(),
        column("current_period_end", "Period ends"),
        column("cancel_at_period_end", "Cancels then", boolean=True),
    ]
    list_filter = ["project", "status", "cancel_at_period_end"]
    search_fields = ["id", "stripe_subscription_id", "customer__external_id"]
    list_select_related = ["project", "customer", "product", "price"]
    readonly_fields, exclude = read_only_page(
        Subscription,
        money=(),
        hidden=("mrr_currency",),  # in the MRR figure's money
        shown_as={
            "discount": subscription_discount,
            "stripe_event_created": _newest_event,
            "mrr_counted": _mrr_counted,
            "schedule_event_created": _newest_schedule_event,
        },
        labels={
            **_NEWEST_EVENT_LABEL,
            "mrr_counted": "MRR counted",
            "schedule_event_created": "Newest schedule event applied",
        },
    )
    actions = ["cancel", "resume"]

    @admin.action(description="Cancel (at period end or now)", permissions=["manage"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> TemplateResponse | None:
        return reason_action(
            self, request, queryset, title="Cancel subscriptions", perform=_cancel, form_class=CancelForm
        )

    @admin.action(description="Resume (undo a scheduled cancellation, or unpause)", permissions=["manage"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Resume subscriptions", perform=_resume)

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "billing.manage_subscription")


@admin.register(Invoice)
class InvoiceAdmin(LargeListAdmin, ViewOnly, ModelAdmin[Invoice]):
    ordering = NEWEST_FIRST
    list_display = [
        "number",
        "project",
        "customer",
        status_column(),
        money_column("total"),
        money_column("amount_paid", "Paid"),
        invoice_period_column("period_end", "Period ends"),
    ]
    # An invoice's status is Stripe's word (no choices): the filter names it as the badge does ("Paid").
    list_filter = [
        "project",
        known_values_filter("status", "status", lambda: INVOICE_RANK, _invoice_status_label),
        known_values_filter("currency", "currency", currencies_known),
    ]
    search_fields = ["number", "stripe_invoice_id", "customer__external_id"]
    list_select_related = ["project", "customer"]
    readonly_fields, exclude = read_only_page(
        Invoice,
        money=("subtotal", "discount", "tax", "total", "amount_due", "amount_paid", "amount_remaining"),
        shown_as={
            "lines": invoice_lines,
            "status": _invoice_status,
            "billing_reason": billing_reason_text,
            "stripe_event_created": _newest_event,
            "period_start": invoice_period_start,
            "period_end": invoice_period_end,
        },
        labels=_NEWEST_EVENT_LABEL,
    )
    actions = ["void", "mark_uncollectible", "credit_note", "add_line", "edit_line"]

    @admin.action(description="Void (no longer owed; final)", permissions=["correct"])
    def void(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Void invoices", perform=_void)

    @admin.action(description="Mark uncollectible (a bad debt)", permissions=["correct"])
    def mark_uncollectible(
        self, request: HttpRequest, queryset: QuerySet[Invoice]
    ) -> TemplateResponse | None:
        return reason_action(
            self, request, queryset, title="Mark invoices uncollectible", perform=_mark_uncollectible
        )

    @admin.action(
        description="Issue a credit note (refund, balance credit or outside Stripe)", permissions=["correct"]
    )
    def credit_note(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> TemplateResponse | None:
        return issue_credit_note(self, request, queryset)

    @admin.action(description="Add a line (drafts)", permissions=["correct"])
    def add_line(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> TemplateResponse | None:
        return add_invoice_line(self, request, queryset)

    @admin.action(description="Change or remove a draft's line", permissions=["correct"])
    def edit_line(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> TemplateResponse | None:
        return edit_invoice_line(self, request, queryset)

    def has_correct_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "billing.correct_invoice")


def _void(invoice: Invoice, data: dict[str, Any], actor: Actor) -> str:
    result = invoice_void(invoice=invoice, actor=actor, reason=data["reason"])
    return f"status {result.status}"


def _mark_uncollectible(invoice: Invoice, data: dict[str, Any], actor: Actor) -> str:
    result = invoice_mark_uncollectible(invoice=invoice, actor=actor, reason=data["reason"])
    return f"status {result.status}"


class CancelForm(ReasonForm):
    at_period_end = forms.BooleanField(required=False, initial=True, help_text="Off: cancel now.")


def _cancel(subscription: Subscription, data: dict[str, Any], actor: Actor) -> str:
    result = subscription_cancel(
        subscription=subscription,
        at_period_end=data.get("at_period_end", False),
        actor=actor,
        reason=data["reason"],
    )
    return f"status {result.status}, cancel at period end: {result.cancel_at_period_end}"


def _resume(subscription: Subscription, data: dict[str, Any], actor: Actor) -> str:
    result = subscription_resume(subscription=subscription, actor=actor, reason=data["reason"])
    return f"status {result.status}"
