"""The entitlements back office: grants, revocations, purchases, usage (with its Stripe meter status); the forms and actions that grant and revoke entitlements (used on the customer page too); the customer inlines.

Rows are read-only here; changes go through the services (the same ones the API calls), each audited with the
operator and a reason. Giving access (a grant, lifting a revocation) needs `entitlements.grant_entitlement`;
taking it away (a revocation, ending a grant or a purchase) needs `entitlements.revoke_entitlement`.
"""

import json
from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from catalog.models import Feature, ProductAccess
from catalog.selectors import feature_by_key
from core.actors import Actor
from core.admin_actions import ReasonForm, has_perm, reason_action
from core.admin_display import NEWEST_FIRST, ViewOnly, column, status_column
from core.admin_generics import ModelAdmin, TabularInline
from core.money import money_format
from customers.models import Customer
from entitlements.models import (
    AllocationCounter,
    AutoRecharge,
    CreditLot,
    EntitlementSettings,
    Grant,
    Hold,
    Purchase,
    Revocation,
    SpendCap,
    UsageCounter,
    UsagePartitionDrop,
    UsageThreshold,
)
from entitlements.services.grants import grant_create, grant_delete, revocation_create, revocation_delete
from entitlements.services.holds import hold_release
from entitlements.services.purchases import purchase_revoke
from entitlements.services.recompute import SETTINGS_FIELDS, entitlement_settings_update
from entitlements.services.spend_caps import spend_cap_delete, spend_cap_set

GRANT_PERMISSION = "entitlements.grant_entitlement"
REVOKE_PERMISSION = "entitlements.revoke_entitlement"


class EntitlementPermissions:
    """`permissions=["grant_entitlement"]` / `["revoke_entitlement"]` on an admin action checks these."""

    def has_grant_entitlement_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, GRANT_PERMISSION)

    def has_revoke_entitlement_permission(self, request: HttpRequest) -> bool:
        return has_perm(request, REVOKE_PERMISSION)


# --- granting and revoking (customer changelist actions and the customer's entitlements page) ---------------


class FeatureForm(ReasonForm):
    """A feature of the customer's project, an optional expiry, and the reason."""

    feature = forms.ChoiceField()
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="UTC. Empty: until someone ends it.",
    )
    feature_choices: list[tuple[str, str]] = []
    initial_feature = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["feature"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = self.feature_choices
        field.initial = self.initial_feature


class GrantForm(FeatureForm):
    field_order = ["feature", "value", "entity", "expires_at", "reason"]
    value = forms.CharField(
        required=False,
        help_text=(
            "JSON. Boolean: true/false (empty: true). Metered or allocation: a number added to the limit "
            "(empty or null: unlimited). Credits: the number of credits. Static: the value."
        ),
    )
    entity = forms.CharField(
        required=False,
        max_length=255,
        help_text="Credits only: one of the customer's seats or workspaces (the tenant's id) whose own credits "
        "these are, where the plan lets its entities hold credits; empty: the account's.",
    )

    def clean_value(self) -> tuple[bool, Any]:
        raw = self.cleaned_data["value"].strip()
        if not raw:
            return False, None
        try:
            return True, json.loads(raw)
        except ValueError:
            raise forms.ValidationError('Not JSON: write true, 100, null or "text" (with quotes).') from None


class RevokeForm(FeatureForm):
    field_order = ["feature", "expires_at", "reason"]


ACCOUNT_CHOICE = ("", "All metered features: the account cap")


class SpendCapForm(FeatureForm):
    field_order = ["feature", "cap", "reason"]
    cap = forms.CharField(
        widget=forms.TextInput(attrs={"size": 40}),
        help_text=(
            'JSON: {"units": n} (units past the limit) or {"amount": m} (minor units the metered price bills for '
            'the period); for the account cap {"amount": m, "currency": "usd"} (minor units all the customer\'s '
            'metered prices in that currency bill together). With "at_cap": "block" (the default) or "alert". '
            "Replaces the customer's own cap."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["expires_at"]
        field = self.fields["feature"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [ACCOUNT_CHOICE, *self.feature_choices]
        field.required = False

    def clean_cap(self) -> Any:
        try:
            return json.loads(self.cleaned_data["cap"])
        except ValueError:
            raise forms.ValidationError('Not JSON: write {"units": 1000} or {"amount": 5000}.') from None


def spend_cap_set_action(customer: Customer, data: dict[str, Any], actor: Actor) -> str:
    cap, _ = spend_cap_set(
        project=customer.project,
        external_id=customer.external_id,
        feature_key=data["feature"] or None,
        cap=data["cap"],
        actor=actor,
        reason=data["reason"],
    )
    return (
        f"spend cap on {data['feature']} set ({cap.pk})" if data["feature"] else f"account cap set ({cap.pk})"
    )


def feature_form(
    base: type[FeatureForm], features: Iterable[Feature], initial: str = ""
) -> type[FeatureForm]:
    """`base` offering `features` (by key; the customer's project decides which one a key names)."""
    choices = {f.key: f"{f.key} — {f.name} ({f.type})" for f in features}

    class Form(base):  # type: ignore[valid-type,misc]
        feature_choices = sorted(choices.items())
        initial_feature = initial

    return Form


def features_of(customers: QuerySet[Customer]) -> QuerySet[Feature]:
    return Feature.objects.filter(project_id__in=customers.values("project_id")).order_by("key")


def entitlement_grant(customer: Customer, data: dict[str, Any], actor: Actor) -> str:
    feature = feature_by_key(project=customer.project, key=data["feature"])
    value_given, value = data["value"]
    grant = grant_create(
        project=customer.project,
        actor=actor,
        external_id=customer.external_id,
        feature=feature,
        reason=data["reason"],
        value=value,
        value_given=value_given,
        expires_at=data.get("expires_at"),
        entity=data.get("entity") or None,
    )
    return f"granted {feature.key} ({grant.pk})" + (f" to {grant.entity}" if grant.entity else "")


def entitlement_revoke(customer: Customer, data: dict[str, Any], actor: Actor) -> str:
    feature = feature_by_key(project=customer.project, key=data["feature"])
    revocation = revocation_create(
        project=customer.project,
        actor=actor,
        external_id=customer.external_id,
        feature=feature,
        reason=data["reason"],
        expires_at=data.get("expires_at"),
    )
    return f"revoked {feature.key} ({revocation.pk})"


# --- the customer page's inlines ----------------------------------------------------------------------------


class _CustomerInline(TabularInline[Any, Customer]):
    """Read-only rows of the customer, with the related rows they show fetched in the same query."""

    extra = 0
    can_delete = False
    show_change_link = True
    select_related: tuple[str, ...] = ("feature",)
    ordering_by: tuple[str, ...] = ("-created_at",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [name for name in self.fields or [] if isinstance(name, str)]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related(*self.select_related).order_by(*self.ordering_by)


class GrantInline(_CustomerInline):
    model = Grant
    fields = ["id", "feature", "value", "expires_at", "reason", "deleted_at", "created_at"]


class RevocationInline(_CustomerInline):
    model = Revocation
    fields = ["id", "feature", "expires_at", "reason", "deleted_at", "created_at"]


def payment_link(purchase: Purchase) -> str:
    """The purchase's payment (billing's, named by its id), linked to its page."""
    url = reverse("admin:billing_payment_change", args=[quote(purchase.payment_id)])
    return format_html('<a href="{}">{}</a>', url, purchase.payment_id)


class PurchaseInline(_CustomerInline):
    model = Purchase
    fields = ["id", "product", "quantity", "payment", "starts_at", "ends_at", "revoked_at", "revoke_reason"]
    select_related = ("product",)

    @admin.display(description="payment")
    def payment(self, purchase: Purchase) -> str:
        return payment_link(purchase)


class CreditLotInline(_CustomerInline):
    model = CreditLot
    fields = [
        "id",
        "feature",
        "source",
        "entity",
        "amount",
        "remaining",
        "expires_at",
        "voided_at",
        "returned_at",
    ]


class UsageCounterInline(_CustomerInline):
    """Usage per metered feature and period (the events themselves: the usage events page, by customer)."""

    model = UsageCounter
    fields = ["feature", "period_start", "period_end", "used", "held", "covered"]
    ordering_by = ("-period_start", "feature__key")
    show_change_link = False
    verbose_name_plural = "usage per period (metered features)"


class AllocationCounterInline(_CustomerInline):
    model = AllocationCounter
    fields = ["feature", "in_use", "held", "updated_at"]
    ordering_by = ("feature__key",)
    show_change_link = False
    verbose_name_plural = "allocations in use"


class HoldInline(_CustomerInline):
    """Active holds only (every hold: the holds page, by customer)."""

    model = Hold
    fields = ["hold_id", "feature", "quantity", "expires_at", "created_at"]
    ordering_by = ("expires_at",)
    verbose_name_plural = "active holds (units set aside)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Hold]:
        return super().get_queryset(request).filter(status=Hold.Status.ACTIVE)


CUSTOMER_INLINES = [
    GrantInline,
    RevocationInline,
    PurchaseInline,
    CreditLotInline,
    UsageCounterInline,
    AllocationCounterInline,
    HoldInline,
]


class _ReadOnly(ViewOnly, ModelAdmin[Any]):
    """Rows only services write (ending a grant or revoking a purchase is an audited action, not a delete): view
    pages."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]


def _grant_delete(grant: Grant, data: dict[str, Any], actor: Actor) -> str | None:
    if grant.deleted_at is not None:
        return "already ended"
    grant_delete(grant=grant, actor=actor, reason=data["reason"])
    return None


def _revocation_delete(revocation: Revocation, data: dict[str, Any], actor: Actor) -> str | None:
    if revocation.deleted_at is not None:
        return "already lifted"
    revocation_delete(revocation=revocation, actor=actor, reason=data["reason"])
    return None


def _purchase_revoke(purchase: Purchase, data: dict[str, Any], actor: Actor) -> str | None:
    purchase_revoke(
        customer=purchase.customer, payment_id=purchase.payment_id, reason=data["reason"], actor=actor
    )
    return None


@admin.register(Grant)
class GrantAdmin(EntitlementPermissions, _ReadOnly):
    ordering = NEWEST_FIRST
    list_display = [
        column("id", "ID"),
        "project",
        "customer",
        "feature",
        "value",
        column("expires_at", "Expires"),
        column("deleted_at", "Ended"),
        column("created_at", "Created"),
    ]
    list_filter = ["project"]
    search_fields = ["id", "customer__external_id", "feature__key", "reason"]
    list_select_related = ["project", "customer", "feature"]
    actions = ["end"]

    @admin.action(
        description="End the grant (takes back unspent credits)", permissions=["revoke_entitlement"]
    )
    def end(self, request: HttpRequest, queryset: QuerySet[Grant]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="End grants", perform=_grant_delete)


@admin.register(Revocation)
class RevocationAdmin(EntitlementPermissions, _ReadOnly):
    ordering = NEWEST_FIRST
    list_display = [
        column("id", "ID"),
        "project",
        "customer",
        "feature",
        column("expires_at", "Expires"),
        column("deleted_at", "Lifted"),
        column("created_at", "Created"),
    ]
    list_filter = ["project"]
    search_fields = ["id", "customer__external_id", "feature__key", "reason"]
    list_select_related = ["project", "customer", "feature"]
    actions = ["lift"]

    @admin.action(description="Lift the revocation", permissions=["grant_entitlement"])
    def lift(self, request: HttpRequest, queryset: QuerySet[Revocation]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Lift revocations", perform=_revocation_delete)


def _spend_cap_delete(cap: SpendCap, data: dict[str, Any], actor: Actor) -> str | None:
    spend_cap_delete(project=cap.project, cap_id=cap.pk, actor=actor, reason=data["reason"])
    return None


@admin.register(SpendCap)
class SpendCapAdmin(EntitlementPermissions, _ReadOnly):
    """Customers' own spend caps (set from the customer list's action "Set a spend cap", or the API)."""

    ordering = NEWEST_FIRST
    list_display = [
        column("id", "ID"),
        "project",
        "customer",
        "bounds",
        "cap_words",
        column("updated_at", "Set"),
    ]
    list_filter = ["project"]
    search_fields = ["id", "customer__external_id", "feature__key"]
    list_select_related = ["project", "customer", "feature"]
    actions = ["remove"]

    @admin.display(description="Spend cap")
    def cap_words(self, cap: SpendCap) -> str:
        """The cap in words: how far use may go, and what happens there."""
        shape, then = cap.cap, "blocks" if cap.cap.get("at_cap") == "block" else "alerts"
        if "units" in shape:
            return f"{shape['units']:,} units past the limit; {then}"
        if "currency" in shape:
            return f"{money_format(shape['amount'], shape['currency'])} billed in all; {then}"
        return f"{shape['amount']:,} (minor units of its price) billed; {then}"

    @admin.display(description="Bounds", ordering="feature__key")
    def bounds(self, cap: SpendCap) -> str:
        """The feature it bounds, or the account's metered features together."""
        return cap.feature.key if cap.feature is not None else "all metered features (account cap)"

    @admin.action(description="Remove the spend cap (the plan's applies)", permissions=["grant_entitlement"])
    def remove(self, request: HttpRequest, queryset: QuerySet[SpendCap]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Remove spend caps", perform=_spend_cap_delete)


@admin.register(Purchase)
class PurchaseAdmin(EntitlementPermissions, _ReadOnly):
    ordering = NEWEST_FIRST
    list_display = [
        column("id", "ID"),
        "project",
        "customer",
        "product",
        "quantity",
        column("starts_at", "Starts"),
        column("ends_at", "Ends"),
        column("revoked_at", "Revoked"),
    ]
    list_filter = ["project"]
    search_fields = ["id", "customer__external_id", "payment_id"]
    list_select_related = ["project", "customer", "product"]
    actions = ["revoke"]

    @admin.action(
        description="Revoke what the payment granted (e.g. after a partial refund)",
        permissions=["revoke_entitlement"],
    )
    def revoke(self, request: HttpRequest, queryset: QuerySet[Purchase]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Revoke purchases", perform=_purchase_revoke)


def _hold_release(hold: Hold, data: dict[str, Any], actor: Actor) -> str | None:
    if hold.status != Hold.Status.ACTIVE:
        return f"already {hold.status}"
    hold_release(project=hold.project, hold_id=hold.hold_id, actor=actor, reason=data["reason"])
    return None


@admin.register(Hold)
class HoldAdmin(EntitlementPermissions, _ReadOnly):
    ordering = NEWEST_FIRST
    list_display = [
        column("hold_id", "Hold"),
        "project",
        "customer",
        "feature",
        "quantity",
        "confirmed",
        column("overrun", "Beyond the hold"),
        status_column(),
        column("expires_at", "Expires"),
        column("ended_at", "Ended"),
        column("created_at", "Created"),
    ]
    list_filter = ["status", "project"]
    search_fields = ["hold_id", "customer__external_id", "feature__key"]
    list_select_related = ["project", "customer", "feature"]
    actions = ["release"]

    @admin.action(description="Release the hold (its units go back)", permissions=["grant_entitlement"])
    def release(self, request: HttpRequest, queryset: QuerySet[Hold]) -> TemplateResponse | None:
        return reason_action(self, request, queryset, title="Release holds", perform=_hold_release)


@admin.register(UsageThreshold)
class UsageThresholdAdmin(_ReadOnly):
    """A customer's own usage thresholds (the tenant sets them through the API)."""

    ordering = NEWEST_FIRST
    list_display = [
        column("id", "ID"),
        "project",
        "customer",
        "feature",
        "kind",
        "value",
        column("created_at", "Created"),
    ]
    list_filter = ["project"]
    search_fields = ["id", "customer__external_id", "feature__key"]
    list_select_related = ["project", "customer", "feature"]


@admin.register(AutoRecharge)
class AutoRechargeAdmin(_ReadOnly):
    """Auto-recharges of credits balances (the tenant configures them through the API; a failed one is armed
    again when the tenant configures it again)."""

    ordering = NEWEST_FIRST
    list_display = [
        column("id", "ID"),
        "customer",
        "feature",
        column("below", "At or below"),
        "price",
        status_column(),
        column("attempt", "Charges"),
        column("payment_id", "Latest payment"),
        column("last_error", "Latest error"),
    ]
    list_filter = ["status", "project"]
    search_fields = ["id", "customer__external_id", "feature__key", "payment_id"]
    list_select_related = ["project", "customer", "feature", "price"]


@admin.register(EntitlementSettings)
class EntitlementSettingsAdmin(ModelAdmin[EntitlementSettings]):
    list_display = [
        "project",
        column("past_due_grace_seconds", "Past-due grace (seconds)"),
        column("usage_grace_seconds", "Late usage accepted for (seconds)"),
        column("credits_low_percent", "Credits low at (%)"),
    ]
    list_select_related = ["project"]

    def save_model(self, request: HttpRequest, obj: EntitlementSettings, form: Any, change: bool) -> None:
        # Through the service (as the platform API): audited, and the project's cached answers are recomputed.
        entitlement_settings_update(
            project=obj.project,
            actor=Actor.user(request.user),
            reason="changed in the admin",
            **{name: getattr(obj, name) for name in SETTINGS_FIELDS},
        )


@admin.register(ProductAccess)
class ProductAccessAdmin(_ReadOnly):
    """Read-only: a product's `access_days` changes through the products API or `sync_catalog`
    (`catalog.services.products.product_update`, audited and told to Stripe), which the admin's transaction
    cannot call."""

    list_display = ["product", column("duration_days", "Access (days; empty: for life)")]
    list_select_related = ["product"]


@admin.register(UsagePartitionDrop)
class UsagePartitionDropAdmin(_ReadOnly):
    """Months of usage events dropped by retention (`services.usage_partitions`, audited as
    `usage_partition.drop`)."""

    ordering = ["-dropped_at"]
    list_display = ["month", "table", "events", "keys", column("dropped_at", "Dropped")]
