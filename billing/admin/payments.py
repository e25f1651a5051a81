"""Carts, payments, checkout sessions and refunds in the back office, read-only; refunding a payment is an
audited action that asks for a reason (and an amount, empty for all that is left).
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from billing import payments
from billing.admin.display import money_column, read_only_page
from billing.models import Cart, CartItem, CheckoutSession, Payment, Refund
from core.actors import Actor
from core.admin_actions import ReasonForm, has_perm, reason_action
from core.admin_generics import ModelAdmin, TabularInline
from core.money import money_format


class CartItemInline(TabularInline[CartItem, Cart]):
    model = CartItem
    extra = 0
    readonly_fields = ["id", "price", "quantity", "created_at"]
    can_delete = False


@admin.register(Cart)
class CartAdmin(ModelAdmin[Cart]):
    list_display = ["id", "project", "customer", "currency", "status", "created_at"]
    list_filter = ["project", "status"]
    search_fields = ["id", "customer__external_id"]
    list_select_related = ["project", "customer"]
    readonly_fields = ["id", "project", "customer", "currency", "status", "created_at", "updated_at"]
    inlines = [CartItemInline]


@admin.register(Payment)
class PaymentAdmin(ModelAdmin[Payment]):
    list_display = [
        "id",
        "project",
        "customer",
        "type",
        "flow",
        "status",
        money_column("amount"),
        money_column("amount_refunded"),
        "currency",
        "reference",
        "created_at",
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
        Payment, money=("amount", "amount_refunded"), hidden=("client_secret",)
    )
    date_hierarchy = "created_at"
    actions = ["refund"]

    @admin.action(description="Refund (full or partial)", permissions=["refund"])
    def refund(self, request: HttpRequest, queryset: QuerySet[Payment]) -> TemplateResponse | None:
        return reason_action(
            self, request, queryset, title="Refund payments", perform=_refund, form_class=RefundForm
        )

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, "billing.refund_payment")


@admin.register(CheckoutSession)
class CheckoutSessionAdmin(ModelAdmin[CheckoutSession]):
    list_display = ["id", "project", "customer", "mode", "status", "expires_at", "stripe_session_id"]
    list_filter = ["project", "mode", "status"]
    search_fields = ["id", "stripe_session_id", "customer__external_id"]
    list_select_related = ["project", "customer"]
    readonly_fields = [field.name for field in CheckoutSession._meta.fields]


@admin.register(Refund)
class RefundAdmin(ModelAdmin[Refund]):
    list_display = ["id", "project", "payment", money_column("amount"), "currency", "status", "created_at"]
    list_filter = ["project", "status"]
    search_fields = ["id", "stripe_refund_id", "payment__id"]
    list_select_related = ["project", "payment"]
    readonly_fields, exclude = read_only_page(Refund, money=("amount",))


class RefundForm(ReasonForm):
    amount = forms.IntegerField(
        min_value=1, required=False, help_text="Minor units (2500 = 25.00). Empty: refund all that is left."
    )


def _refund(payment: Payment, data: dict[str, Any], actor: Actor) -> str:
    refunded = payments.payment_refund(
        payment=payment, amount=data.get("amount"), reason=data["reason"], actor=actor
    )
    return (
        f"refunded {money_format(refunded.amount_refunded, refunded.currency)}"
        f" of {money_format(refunded.amount, refunded.currency)}"
    )
