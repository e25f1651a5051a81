"""Carts, payments, checkout sessions and refunds in the back office, read-only; refunding a payment is an
audited action that asks for a reason (and an amount, empty for all that is left).
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from billing.models import Cart, CartItem, CheckoutSession, Payment, Refund
from billing.services.refunds import payment_refund
from core.actors import Actor
from core.admin_actions import ReasonForm, has_perm, reason_action
from core.admin_columns import money_column, payment_items, read_only_page
from core.admin_display import NEWEST_FIRST, ViewOnly, column, cut_column, status_column
from core.admin_generics import ModelAdmin, TabularInline
from core.admin_lists import LargeListAdmin
from core.errors import InvalidRequest
from core.ids import random_token
from core.money import money_format, money_parse


class CartItemInline(TabularInline[CartItem, Cart]):
    model = CartItem
    extra = 0
    fields = readonly_fields = ("id", "price", "quantity", "created_at")
    can_delete = False


@admin.register(Cart)
class CartAdmin(ViewOnly, ModelAdmin[Cart]):
    ordering = NEWEST_FIRST
    list_display = [
        column("id", "ID"),
        "project",
        "customer",
        "currency",
        status_column(),
        column("created_at", "Created"),
    ]
    list_filter = ["project", "status"]
    search_fields = ["id", "customer__external_id"]
    list_select_related = ["project", "customer"]
    readonly_fields = ["id", "project", "customer", "currency", "status", "created_at", "updated_at"]
    inlines = [CartItemInline]


@admin.register(Payment)
class PaymentAdmin(LargeListAdmin, ViewOnly, ModelAdmin[Payment]):
    ordering = NEWEST_FIRST
    list_display = [
        column("id", "ID"),
        "project",
        "customer",
        "type",
        "flow",
        status_column(),
        money_column("amount"),
        money_column("amount_refunded", "Refunded"),
        cut_column("reference", "Reference"),
        column("created_at", "Created"),
    ]
    list_filter = ["project", "status", "type", "flow", "source", "created_at"]
    search_fields = [
        "id",
        "reference",
        "customer__external_id",
        "stripe_payment_intent_id",
        "stripe_checkout_session_id",
        "stripe_invoice_id",
    ]
    list_select_related = ["project", "customer"]
    readonly_fields, exclude = read_only_page(
        Payment,
        money=("amount", "amount_refunded", "amount_tax", "amount_discount"),
        hidden=("client_secret",),
        shown_as={"items": payment_items},
    )
    actions = ["refund"]

    @admin.action(description="Refund (full or partial)", permissions=["refund"])
    def refund(self, request: HttpRequest, queryset: QuerySet[Payment]) -> TemplateResponse | None:
        return reason_action(
            self, request, queryset, title="Refund payments", perform=_refund, form_class=RefundForm
        )

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "billing.refund_payment")


@admin.register(CheckoutSession)
class CheckoutSessionAdmin(LargeListAdmin, ViewOnly, ModelAdmin[CheckoutSession]):
    ordering = NEWEST_FIRST
    list_display = [
        column("id", "ID"),
        "project",
        "customer",
        "mode",
        status_column(),
        column("expires_at", "Expires"),
        column("stripe_session_id", "Stripe session"),
    ]
    list_filter = ["project", "mode", "status"]
    search_fields = ["id", "stripe_session_id", "customer__external_id"]
    list_select_related = ["project", "customer"]
    readonly_fields = [field.name for field in CheckoutSession._meta.fields]


# Stripe's reasons a refund failed (and ours for one that never reached Stripe), in words.
_FAILURE_REASONS = {
    "lost_or_stolen_card": "The card was reported lost or stolen",
    "expired_or_canceled_card": "The card has expired or was canceled",
    "charge_for_pending_refund_disputed": "The charge was disputed while the refund was pending",
    "insufficient_funds": "Insufficient funds on the account it was sent back from",
    "declined": "Declined by the customer's bank",
    "merchant_request": "Canceled at the merchant's request",
    "unknown": "Unknown (Stripe gave no reason)",
    "not_sent": "Never reached Stripe (nothing was refunded)",
    "amount_too_large": "Stripe refused it: more than was left to refund",
    "charge_already_refunded": "Stripe refused it: the charge was already refunded",
    "charge_disputed": "Stripe refused it: the charge was disputed",
}


@admin.register(Refund)
class RefundAdmin(LargeListAdmin, ViewOnly, ModelAdmin[Refund]):
    ordering = NEWEST_FIRST
    list_display = [
        column("id", "ID"),
        "project",
        "payment",
        money_column("amount"),
        status_column(),
        column("created_at", "Created"),
    ]
    list_filter = ["project", "status"]
    search_fields = ["id", "stripe_refund_id", "payment__id"]
    list_select_related = ["project", "payment"]
    readonly_fields, exclude = read_only_page(
        Refund,
        money=("amount",),
        shown_as={
            "failure_reason": lambda r: _FAILURE_REASONS.get(r.failure_reason, r.failure_reason) or "-"
        },
        hidden=("operation",),  # an internal key (its retries find the refund by it); nothing to read
        labels={"failure_reason": "Why it failed"},
    )


class RefundForm(ReasonForm):
    # Drawn when the form is shown: submitting the same page again (a double click, a retry after an error)
    # continues the same refunds instead of refunding twice.
    operation = forms.RegexField(
        regex=r"^[A-Za-z0-9]{24}$", required=False, widget=forms.HiddenInput, initial=lambda: random_token(24)
    )
    amount = forms.CharField(
        required=False,
        max_length=30,
        help_text="In the payment's currency, as on its page: 25.00 refunds $25.00 (¥ has no decimals). "
        "Empty: refund all that is left.",
    )

    def clean_amount(self) -> str:
        amount: str = self.cleaned_data["amount"].strip()
        if amount:
            try:
                money_parse(
                    amount, "kwd"
                )  # the form, for any currency; the payment's decimals are checked next
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return amount


def _refund(payment: Payment, data: dict[str, Any], actor: Actor) -> str:
    amount = None
    if data.get("amount"):
        try:
            amount = money_parse(data["amount"], payment.currency)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="amount") from exc
        if amount == 0:
            raise InvalidRequest("A refund of nothing: leave the amount empty to refund all that is left.")
    refunded = payment_refund(
        payment=payment,
        amount=amount,
        reason=data["reason"],
        actor=actor,
        operation=f"admin:{data['operation']}:{payment.pk}" if data.get("operation") else "",
    )
    return (
        f"refunded {money_format(refunded.amount_refunded, refunded.currency)}"
        f" of {money_format(refunded.amount, refunded.currency)}"
    )
