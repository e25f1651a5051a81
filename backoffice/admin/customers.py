"""The customer page: what an operator needs about one customer — read-only billing inlines (subscriptions,
payments, invoices) next to the entitlement ones, "explain entitlements" with links to what grants each feature,
and the audited grant and revoke actions.
"""

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from backoffice.admin.customer_privacy import (
    ERASE_PERMISSION,
    EXPORT_PERMISSION,
    customer_erase_form,
    customer_erase_page,
    customer_export_download,
)
from billing.models import Invoice, Payment, Subscription
from catalog.models import Feature
from catalog.selectors import currencies_known
from core.actors import Actor
from core.admin_actions import has_perm, reason_action
from core.admin_columns import invoice_period_column, money_column, stripe_dashboard_link
from core.admin_display import NEWEST_FIRST, STATUS_TONES, column, status_column
from core.admin_generics import ModelAdmin, TabularInline
from core.admin_lists import LargeListAdmin, known_values_filter
from customers.models import Customer
from customers.services.customers import customer_update
from entitlements.admin.records import (
    CUSTOMER_INLINES,
    GRANT_PERMISSION,
    REVOKE_PERMISSION,
    EntitlementPermissions,
    FeatureForm,
    GrantForm,
    RevokeForm,
    SpendCapForm,
    entitlement_grant,
    entitlement_revoke,
    feature_form,
    features_of,
    spend_cap_set_action,
)
from entitlements.explain import duration_text, entitlements_explain


class _ReadOnlyInline(TabularInline[Any, Customer]):
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = NEWEST_FIRST

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SubscriptionInline(_ReadOnlyInline):
    model = Subscription

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscription]:
        return super().get_queryset(request).select_related("product", "price")

    readonly_fields = ("id", "product", "price", "quantity", "status_badge", "period_ends", "cancels_then")
    fields = readonly_fields
    status_badge = staticmethod(status_column())
    period_ends = staticmethod(column("current_period_end", "Period ends"))
    cancels_then = staticmethod(column("cancel_at_period_end", "Cancels at period end", boolean=True))


class PaymentInline(_ReadOnlyInline):
    model = Payment
    readonly_fields = (
        "id",
        "type",
        "source",
        "status_badge",
        "amount_money",
        "amount_refunded_money",
        "reference",
        "created",
    )
    fields = readonly_fields
    status_badge = staticmethod(status_column())
    amount_money = staticmethod(money_column("amount"))
    amount_refunded_money = staticmethod(money_column("amount_refunded", "Refunded"))
    created = staticmethod(column("created_at", "Created"))


class InvoiceInline(_ReadOnlyInline):
    model = Invoice
    readonly_fields = ("number", "status_badge", "total_money", "amount_paid_money", "period_ends")
    fields = readonly_fields
    status_badge = staticmethod(status_column())
    total_money = staticmethod(money_column("total"))
    amount_paid_money = staticmethod(money_column("amount_paid", "Paid"))
    period_ends = staticmethod(invoice_period_column("period_end", "Period ends"))


@admin.register(Customer)
class CustomerAdmin(LargeListAdmin, EntitlementPermissions, ModelAdmin[Customer]):
    """A customer with everything an operator needs: billing and entitlement inlines, the "explain
    entitlements" page (what the API answers per feature, and why), and grant/revoke with a reason."""

    inlines = [SubscriptionInline, PaymentInline, InvoiceInline, *CUSTOMER_INLINES]
    ordering = NEWEST_FIRST
    list_display = [
        column("external_id", "Tenant's user ID"),
        "project",
        "email",
        "currency",
        column("stripe_customer_id", "Stripe customer"),
        column("created_at", "Created"),
        "entitlements_link",
    ]
    # Neither filter reads the customers table: projects and the catalog's currencies are small tables.
    list_filter = ["project", known_values_filter("currency", "currency", currencies_known)]
    search_fields = ["external_id", "email", "stripe_customer_id", "id"]
    list_select_related = ["project"]
    # Email, name and metadata are edited here, through the API's upsert (`save_model`); the rest is read-only.
    fields = [
        "id",
        "project",
        "external_id",
        "email",
        "name",
        "metadata",
        "currency",
        "in_stripe",
        "stripe_pending",
        "test_clock",
        "usage_events",
        "created_at",
        "updated_at",
        "erased_at",
    ]
    readonly_fields = [
        "id",
        "project",
        "external_id",
        "currency",
        "in_stripe",
        "stripe_pending",
        "test_clock",
        "usage_events",
        "created_at",
        "updated_at",
        "erased_at",
    ]
    actions = [
        "grant_entitlement",
        "revoke_entitlement",
        "set_spend_cap",
        "export_personal_data",
        "erase_personal_data",
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Customer | None = None) -> Any:
        # An erased customer takes no person's data back.
        if obj is not None and obj.erased_at is not None:
            return [*self.readonly_fields, *_EDITABLE]
        return self.readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Customers are created by the API (and at Stripe with their first purchase).
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Customer | None = None) -> bool:
        # Only a customer nothing hangs on: money (a subscription, a payment, an invoice) keeps it, and its
        # history with it. The list offers no bulk delete (`get_actions`): one page at a time, where it is known.
        if obj is not None and (obj.subscriptions.exists() or obj.payments.exists() or obj.invoices.exists()):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request: HttpRequest, obj: Customer, form: Any, change: bool) -> None:
        """Through the API's upsert (Stripe told of an email or name change), audited with the operator."""
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in _EDITABLE}
        if changes:
            customer_update(
                actor=Actor.user(request.user), customer=obj, reason="changed in the admin", **changes
            )

    @admin.display(description="Stripe up to date", boolean=True)
    def stripe_pending(self, customer: Customer) -> bool:
        """✔ once Stripe's customer has every change saved here; ✖ while one is still to be sent."""
        return not customer.stripe_sync_pending

    @admin.display(description="Stripe customer")
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

    @admin.action(description="Set a spend cap", permissions=["grant_entitlement"])
    def set_spend_cap(self, request: HttpRequest, queryset: QuerySet[Customer]) -> TemplateResponse | None:
        form_class = feature_form(SpendCapForm, features_of(queryset).filter(type=Feature.Type.METERED))
        return reason_action(
            self,
            request,
            queryset.select_related("project"),
            title="Set a spend cap",
            perform=spend_cap_set_action,
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

    def has_export_personal_data_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, EXPORT_PERMISSION)

    def has_erase_personal_data_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, ERASE_PERMISSION)

    @admin.action(description="Download personal data (one customer)", permissions=["export_personal_data"])
    def export_personal_data(
        self, request: HttpRequest, queryset: QuerySet[Customer]
    ) -> HttpResponseBase | None:
        customers = list(queryset.select_related("project")[:2])
        if len(customers) != 1:
            self.message_user(request, "Select one customer to download.", messages.WARNING)
            return None
        return customer_export_download(request, customers[0])

    @admin.action(description="Erase personal data", permissions=["erase_personal_data"])
    def erase_personal_data(self, request: HttpRequest, queryset: QuerySet[Customer]) -> HttpResponse | None:
        return customer_erase_form(self, request, queryset)

    def export_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        return customer_export_download(request, self._customer(request, object_id))

    def erase_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return customer_erase_page(self, request, self._customer(request, object_id))

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/export/", wrap(self.export_view), name="customers_customer_export"),
            path("<path:object_id>/erase/", wrap(self.erase_view), name="customers_customer_erase"),
            path(
                "<path:object_id>/entitlements/",
                wrap(self.entitlements_view),
                name="customers_customer_entitlements",
            ),
            path(
                "<path:object_id>/entitlements/grant/",
                wrap(self.entitlement_grant_view),
                name="customers_customer_entitlement_grant",
            ),
            path(
                "<path:object_id>/entitlements/revoke/",
                wrap(self.entitlement_revoke_view),
                name="customers_customer_entitlement_revoke",
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
            "tones": STATUS_TONES,
        }
        return TemplateResponse(request, "admin/customers/customer/entitlements.html", context)

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


_EDITABLE = ("email", "name", "metadata")


def _explain_url(customer_id: str) -> str:
    return reverse("admin:customers_customer_entitlements", args=[quote(customer_id)])


def _action_url(kind: str, customer_id: str) -> str:
    return reverse(f"admin:customers_customer_entitlement_{kind}", args=[quote(customer_id)])


_SOURCE_PAGES = {
    "subscription": "billing_subscription",
    "purchase": "entitlements_purchase",
    "grant": "entitlements_grant",
    "revocation": "entitlements_revocation",
    "default_product": "catalog_product",
    "credit_lot": "entitlements_creditlot",
}


def _source_url(kind: str, object_id: str) -> str:
    return reverse(f"admin:{_SOURCE_PAGES[kind]}_change", args=[quote(object_id)])
