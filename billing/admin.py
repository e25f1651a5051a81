"""Billing records in the back office. Stripe-mirrored and money fields are read-only: changes go through
services, as audited actions that ask for a reason (`core.admin_actions`). The customer page gathers what an
operator needs: billing and entitlement inlines, "explain entitlements", and grant/revoke."""

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from billing import payments, subscriptions
from billing.models import (
    Cart,
    CartItem,
    CheckoutSession,
    Customer,
    Drift,
    Invoice,
    Payment,
    Price,
    Product,
    ReconciliationRun,
    Refund,
    Subscription,
)
from core.actors import Actor
from core.admin_actions import ReasonForm, has_perm, reason_action
from core.money import money_format
from entitlements.admin import (
    CUSTOMER_INLINES,
    GRANT_PERMISSION,
    REVOKE_PERMISSION,
    EntitlementPermissions,
    FeatureForm,
    GrantForm,
    RevokeForm,
    entitlement_grant,
    entitlement_revoke,
    feature_form,
    features_of,
)
from entitlements.explain import duration_text, entitlements_explain
from entitlements.models import Feature


def money_column(field: str) -> Callable[[Any], str]:
    """A list or detail column showing the money field `field` of a row with a `currency` as "$49.00", sorted by
    the stored minor units. It keeps the field's name and label, so it takes the raw field's place."""

    @admin.display(description=field.replace("_", " ").capitalize(), ordering=field)
    def column(obj: Any) -> str:
        return money_format(getattr(obj, field), obj.currency)

    column.__name__ = field
    return column


def read_only_page(
    model: type[Model], *, money: tuple[str, ...], hidden: tuple[str, ...] = ()
) -> tuple[list[Any], list[str]]:
    """`readonly_fields, exclude` of a detail page showing every field of `model` read-only, the `money` fields as
    money, the `hidden` ones not at all. The raw money fields are excluded from the form: a field neither
    read-only nor excluded would be editable."""
    readonly = [
        money_column(field.name) if field.name in money else field.name
        for field in model._meta.fields
        if field.name not in hidden
    ]
    return readonly, [*hidden, *money]


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SubscriptionInline(_ReadOnlyInline):
    model = Subscription

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscription]:
        return super().get_queryset(request).select_related("product", "price")

    fields = ["id", "product", "price", "quantity", "status", "current_period_end", "cancel_at_period_end"]
    readonly_fields = [
        "id",
        "product",
        "price",
        "quantity",
        "status",
        "current_period_end",
        "cancel_at_period_end",
    ]


class PaymentInline(_ReadOnlyInline):
    model = Payment
    fields = [
        "id",
        "type",
        "source",
        "status",
        "amount_money",
        "amount_refunded_money",
        "currency",
        "reference",
        "created_at",
    ]
    readonly_fields = [
        "id",
        "type",
        "source",
        "status",
        "amount_money",
        "amount_refunded_money",
        "currency",
        "reference",
        "created_at",
    ]
    amount_money = staticmethod(money_column("amount"))
    amount_refunded_money = staticmethod(money_column("amount_refunded"))


class InvoiceInline(_ReadOnlyInline):
    model = Invoice
    fields = ["number", "status", "total_money", "amount_paid_money", "currency", "period_end"]
    readonly_fields = ["number", "status", "total_money", "amount_paid_money", "currency", "period_end"]
    total_money = staticmethod(money_column("total"))
    amount_paid_money = staticmethod(money_column("amount_paid"))


def stripe_dashboard_link(kind: str, stripe_id: str) -> str:
    """A link to the object in Stripe's dashboard (test-mode path for test keys)."""
    if not stripe_id:
        return "—"
    mode = "" if settings.STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_")) else "test/"
    return format_html(
        '<a href="https://dashboard.stripe.com/{}{}/{}" rel="noopener" target="_blank">{}</a>',
        mode,
        kind,
        stripe_id,
        stripe_id,
    )


@admin.register(Customer)
class CustomerAdmin(EntitlementPermissions, admin.ModelAdmin):
    """A customer with everything an operator needs: billing and entitlement inlines, the "explain
    entitlements" page (what the API answers per feature, and why), and grant/revoke with a reason."""

    inlines = [SubscriptionInline, PaymentInline, InvoiceInline, *CUSTOMER_INLINES]
    list_display = [
        "external_id",
        "project",
        "email",
        "currency",
        "stripe_customer_id",
        "created_at",
        "entitlements_link",
    ]
    list_filter = ["project", "currency"]
    search_fields = ["external_id", "email", "stripe_customer_id", "id"]
    list_select_related = ["project"]
    readonly_fields = [
        "id",
        "project",
        "external_id",
        "currency",
        "stripe_customer_id",
        "in_stripe",
        "usage_events",
        "created_at",
        "updated_at",
    ]
    actions = ["grant_entitlement", "revoke_entitlement"]

    @admin.display(description="Stripe")
    def in_stripe(self, customer: Customer) -> str:
        return stripe_dashboard_link("customers", customer.stripe_customer_id)

    @admin.display(description="Entitlements")
    def entitlements_link(self, customer: Customer) -> str:
        return format_html('<a href="{}">explain</a>', _explain_url(customer.pk))

    @admin.display(description="Usage events")
    def usage_events(self, customer: Customer) -> str:
        url = reverse("admin:entitlements_usageevent_changelist") + "?" + urlencode({"customer": customer.pk})
        return format_html('<a href="{}">all usage events of this customer</a>', url)

    @admin.action(description="Grant an entitlement", permissions=["grant_entitlement"])
    def grant_entitlement(
        self, request: HttpRequest, queryset: QuerySet[Customer]
    ) -> TemplateResponse | None:
        form_class = feature_form(GrantForm, features_of(queryset))
        return reason_action(
            self,
            request,
            queryset.select_related("project"),
            title="Grant an entitlement",
            perform=entitlement_grant,
            form_class=form_class,
        )

    @admin.action(description="Revoke an entitlement", permissions=["revoke_entitlement"])
    def revoke_entitlement(
        self, request: HttpRequest, queryset: QuerySet[Customer]
    ) -> TemplateResponse | None:
        form_class = feature_form(RevokeForm, features_of(queryset))
        return reason_action(
            self,
            request,
            queryset.select_related("project"),
            title="Revoke an entitlement",
            perform=entitlement_revoke,
            form_class=form_class,
        )

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/entitlements/",
                wrap(self.entitlements_view),
                name="billing_customer_entitlements",
            ),
            path(
                "<path:object_id>/entitlements/grant/",
                wrap(self.entitlement_grant_view),
                name="billing_customer_entitlement_grant",
            ),
            path(
                "<path:object_id>/entitlements/revoke/",
                wrap(self.entitlement_revoke_view),
                name="billing_customer_entitlement_revoke",
            ),
            *super().get_urls(),
        ]

    def _customer(self, request: HttpRequest, object_id: str) -> Customer:
        customer = self.get_object(request, unquote(object_id))
        if customer is None:
            raise Http404("No such customer.")
        if not self.has_view_permission(request, customer):
            raise PermissionDenied
        return customer

    def entitlements_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Explain entitlements: per feature, the API's answer now and every source with its effect and why."""
        customer = self._customer(request, object_id)
        explanation = entitlements_explain(project=customer.project, customer=customer)
        can_grant = self.has_grant_entitlement_permission(request)
        can_revoke = self.has_revoke_entitlement_permission(request)
        features = []
        for feature in explanation.features:
            query = urlencode({"feature": feature.key})
            features.append(
                {
                    "explained": feature,
                    "answer": [
                        (name, json.dumps(value))
                        for name, value in feature.answer.items()
                        if name != "sources"
                    ],
                    "sources": [
                        {
                            "source": source,
                            "url": _source_url(source.kind, source.id),
                            "value": "" if source.kind == "revocation" else json.dumps(source.value),
                        }
                        for source in feature.sources
                    ],
                    "grant_url": f"{_action_url('grant', customer.pk)}?{query}" if can_grant else "",
                    "revoke_url": f"{_action_url('revoke', customer.pk)}?{query}" if can_revoke else "",
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Entitlements of {customer.external_id}",
            "opts": self.opts,
            "original": customer,
            "customer": customer,
            "explanation": explanation,
            "grace": duration_text(explanation.past_due_grace),
            "features": features,
        }
        return TemplateResponse(request, "admin/billing/customer/entitlements.html", context)

    def entitlement_grant_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._entitlement_change(
            request, object_id, GRANT_PERMISSION, GrantForm, "Grant an entitlement", entitlement_grant
        )

    def entitlement_revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._entitlement_change(
            request, object_id, REVOKE_PERMISSION, RevokeForm, "Revoke an entitlement", entitlement_revoke
        )

    def _entitlement_change(
        self,
        request: HttpRequest,
        object_id: str,
        permission: str,
        base: type[FeatureForm],
        title: str,
        perform: Callable[[Customer, dict[str, Any], Actor], str | None],
    ) -> HttpResponse:
        """The customer's own grant/revoke page: the same form, service and audit row as the list action."""
        customer = self._customer(request, object_id)
        if not has_perm(request, permission):
            raise PermissionDenied
        features = Feature.objects.filter(project_id=customer.project_id).order_by("key")
        form_class = feature_form(base, features, initial=request.GET.get("feature", ""))
        response = reason_action(
            self,
            request,
            Customer.objects.filter(pk=customer.pk).select_related("project"),
            title=title,
            perform=perform,
            form_class=form_class,
        )
        return response if response is not None else redirect(_explain_url(customer.pk))


def _explain_url(customer_id: str) -> str:
    return reverse("admin:billing_customer_entitlements", args=[quote(customer_id)])


def _action_url(kind: str, customer_id: str) -> str:
    return reverse(f"admin:billing_customer_entitlement_{kind}", args=[quote(customer_id)])


_SOURCE_PAGES = {
    "subscription": "billing_subscription",
    "purchase": "entitlements_purchase",
    "grant": "entitlements_grant",
    "revocation": "entitlements_revocation",
    "default_product": "billing_product",
    "credit_lot": "entitlements_creditlot",
}


def _source_url(kind: str, object_id: str) -> str:
    return reverse(f"admin:{_SOURCE_PAGES[kind]}_change", args=[quote(object_id)])


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["key", "project", "name", "active", "stripe_product_id"]
    list_filter = ["project", "active"]
    search_fields = ["key", "name", "stripe_product_id", "id"]
    list_select_related = ["project"]
    readonly_fields = ["id", "project", "key", "stripe_product_id", "created_at", "updated_at"]


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = [
        "key",
        "project",
        "product",
        money_column("unit_amount"),
        "currency",
        "type",
        "interval",
        "active",
        "stripe_price_id",
    ]
    list_filter = ["project", "active", "type", "currency"]
    search_fields = ["key", "stripe_price_id", "id"]
    list_select_related = ["project", "product"]
    readonly_fields, exclude = read_only_page(Price, money=("unit_amount",))


class CartItemInline(admin.TabularInline):
    model = CartItem
    extra = 0
    readonly_fields = ["id", "price", "quantity", "created_at"]
    can_delete = False


@admin.register(Cart)
class CartAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "customer", "currency", "status", "created_at"]
    list_filter = ["project", "status"]
    search_fields = ["id", "customer__external_id"]
    list_select_related = ["project", "customer"]
    readonly_fields = ["id", "project", "customer", "currency", "status", "created_at", "updated_at"]
    inlines = [CartItemInline]


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
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
class CheckoutSessionAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "customer", "mode", "status", "expires_at", "stripe_session_id"]
    list_filter = ["project", "mode", "status"]
    search_fields = ["id", "stripe_session_id", "customer__external_id"]
    list_select_related = ["project", "customer"]
    readonly_fields = [field.name for field in CheckoutSession._meta.fields]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "customer",
        "product",
        "price",
        "status",
        "current_period_end",
        "cancel_at_period_end",
    ]
    list_filter = ["project", "status", "cancel_at_period_end"]
    search_fields = ["id", "stripe_subscription_id", "customer__external_id"]
    list_select_related = ["project", "customer", "product", "price"]
    readonly_fields = [field.name for field in Subscription._meta.fields]
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


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "payment", money_column("amount"), "currency", "status", "created_at"]
    list_filter = ["project", "status"]
    search_fields = ["id", "stripe_refund_id", "payment__id"]
    list_select_related = ["project", "payment"]
    readonly_fields, exclude = read_only_page(Refund, money=("amount",))


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "project",
        "customer",
        "status",
        money_column("total"),
        money_column("amount_paid"),
        "currency",
        "period_end",
    ]
    list_filter = ["project", "status", "currency"]
    search_fields = ["number", "stripe_invoice_id", "customer__external_id"]
    list_select_related = ["project", "customer"]
    readonly_fields, exclude = read_only_page(
        Invoice, money=("subtotal", "tax", "total", "amount_due", "amount_paid", "amount_remaining")
    )


class DriftInline(admin.TabularInline):
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
        "local_value",
        "stripe_value",
        "status",
        "detail",
    ]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "status",
        "fix",
        "checked",
        "drift_count",
        "fixed_count",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status", "project", "fix"]
    list_select_related = ["project"]
    readonly_fields = [field.name for field in ReconciliationRun._meta.fields]
    inlines = [DriftInline]


@admin.register(Drift)
class DriftAdmin(admin.ModelAdmin):
    list_display = [
        "run",
        "project",
        "kind",
        "object_type",
        "stripe_id",
        "field",
        "local_value",
        "stripe_value",
        "status",
    ]
    list_filter = ["status", "kind", "object_type", "project"]
    search_fields = ["stripe_id", "local_id"]
    list_select_related = ["run", "project"]
    readonly_fields = [field.name for field in Drift._meta.fields]


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


class CancelForm(ReasonForm):
    at_period_end = forms.BooleanField(required=False, initial=True, help_text="Off: cancel now.")


def _cancel(subscription: Subscription, data: dict[str, Any], actor: Actor) -> str:
    result = subscriptions.subscription_cancel(
        subscription=subscription,
        at_period_end=data.get("at_period_end", False),
        actor=actor,
        reason=data["reason"],
    )
    return f"status {result.status}, cancel at period end: {result.cancel_at_period_end}"


def _resume(subscription: Subscription, data: dict[str, Any], actor: Actor) -> str:
    result = subscriptions.subscription_resume(subscription=subscription, actor=actor, reason=data["reason"])
    return f"status {result.status}"
