"""The catalog in the back office: products, prices, features and the values products give features.

Every change goes through the catalog services, as the products and features API does: an audit row with the
operator, the project's cached entitlement answers recomputed, and (for products) Stripe told. A product's name,
description and active flag, a feature's name, unit and type, and a product's feature values are edited here;
prices are read-only (a price change may create a new Stripe price: the prices API or `sync_catalog`). Nothing
mirrored from Stripe is added or deleted here. A product's versions, their comparison and its draft's publish and
discard are in `catalog.admin_versions`.
"""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from catalog.admin_versions import ProductVersionPages
from catalog.formulas import formula_parse
from catalog.models import Feature, Price, Product, ProductFeature
from catalog.rules import FeatureValue, account_cap_parse, feature_value_parse
from catalog.services.features import feature_create, feature_in_use, feature_update
from catalog.services.products import product_update
from core.actors import Actor
from core.admin_columns import money_column, price_tiers, read_only_page, stripe_dashboard_link
from core.admin_display import NoAddOrDelete, ViewOnly, column
from core.admin_generics import ModelAdmin, TabularInline
from core.errors import ApiError, InvalidRequest


class _ServiceWrites:
    """Django runs a change form's save in one transaction; the catalog services open their own and call Stripe
    after it commits, which they cannot do inside Django's. So the page runs without it: the service is the
    unit of work (its rows and audit row commit together; a Stripe failure is completed by `sync_catalog`).
    CSRF protection stays: `AdminSite.admin_view` wraps every admin page in it."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        return self._changeform_view(request, object_id, form_url, extra_context)  # type: ignore[attr-defined,no-any-return]

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return self._delete_view(request, object_id, extra_context)  # type: ignore[attr-defined,no-any-return]


def _feature_values(product: Product) -> dict[str, Any]:
    """The product's feature map as the products API takes it (`{"seats": {"per_unit": 5}, "sso": true}`)."""
    return {
        value.feature.key: FeatureValue.of(value).api()
        for value in ProductFeature.objects.filter(product=product).select_related("feature")
    }


class ProductFeatureInline(TabularInline[ProductFeature, Product]):
    model = ProductFeature
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["feature", "value", "per_unit", "overage", "cap", "windows", "credits", "rollover", "cadence"]
    readonly_fields = [
        "feature",
        "value",
        "per_unit",
        "overage",
        "cap",
        "windows",
        "credits",
        "rollover",
        "cadence",
    ]
    verbose_name_plural = "feature values (change them on the product feature values page)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProductFeature]:
        return super().get_queryset(request).select_related("feature").order_by("feature__key")


class ProductForm(forms.ModelForm):  # type: ignore[type-arg]
    """The product's form: its account cap checked as the API checks it (`account_cap_parse`)."""

    def clean_account_cap(self) -> dict[str, Any] | None:
        given = self.cleaned_data.get("account_cap")
        if given is None:
            return None
        try:
            return account_cap_parse(given, param="account_cap")
        except InvalidRequest as exc:
            # The API's words, without the parameter's name it opens with ("account_cap: …").
            raise forms.ValidationError(exc.message.removeprefix("account_cap: ")) from exc


@admin.register(Product)
class ProductAdmin(_ServiceWrites, ProductVersionPages, NoAddOrDelete, ModelAdmin[Product]):
    list_display = [
        "key",
        "project",
        "name",
        column("active", "Active", boolean=True),
        column("stripe_product_id", "Stripe product"),
    ]
    list_filter = ["project", "active"]
    search_fields = ["key", "name", "stripe_product_id", "id"]
    list_select_related = ["project"]
    form = ProductForm
    fields = [
        "id",
        "project",
        "key",
        "name",
        "description",
        "active",
        "account_cap",
        "in_stripe",
        "created_at",
        "updated_at",
    ]
    readonly_fields = ["id", "project", "key", "in_stripe", "created_at", "updated_at"]
    inlines = [ProductFeatureInline]

    @admin.display(description="Stripe")
    def in_stripe(self, product: Product) -> str:
        return stripe_dashboard_link("products", product.stripe_product_id)

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in _PRODUCT_FIELDS}
        try:
            product_update(actor=Actor.user(request.user), product=obj, **changes)
        except ApiError as exc:
            self.message_user(
                request, f"Stripe was not told: {exc.message} (run sync_catalog)", messages.ERROR
            )


_PRODUCT_FIELDS = ("name", "description", "active", "account_cap")


def _earlier_stripe_prices(price: Price) -> str:
    """The Stripe prices this price had before (an amount change creates a new one)."""
    return ", ".join(price.stripe_price_history) or "-"


@admin.register(Price)
class PriceAdmin(ViewOnly, ModelAdmin[Price]):
    list_display = [
        "key",
        "project",
        "product",
        money_column("unit_amount", "Unit price"),
        "type",
        "interval",
        column("active", "Active", boolean=True),
        column("stripe_price_id", "Stripe price"),
    ]
    list_filter = ["project", "active", "type", "currency"]
    search_fields = ["key", "stripe_price_id", "id"]
    list_select_related = ["project", "product"]
    readonly_fields, exclude = read_only_page(
        Price,
        money=("unit_amount",),
        shown_as={"tiers": price_tiers, "stripe_price_history": _earlier_stripe_prices},
    )


class FeatureForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Feature
        fields = ["project", "key", "name", "type", "unit", "usage_formula"]

    def clean_usage_formula(self) -> Any:
        try:
            return formula_parse(self.cleaned_data.get("usage_formula"))
        except InvalidRequest as error:
            raise forms.ValidationError(error.message) from error

    def clean_type(self) -> str:
        new_type: str = self.cleaned_data["type"]
        if self.instance.pk and new_type != self.instance.type and feature_in_use(self.instance):
            raise forms.ValidationError("A product or price uses the feature: its type can no longer change.")
        return new_type


@admin.register(Feature)
class FeatureAdmin(_ServiceWrites, ModelAdmin[Feature]):
    """Features are created and changed through the catalog services (audited; every cached answer of the
    project recomputed). They are not deleted: grants, usage and credits hang on them."""

    form = FeatureForm
    list_display = [
        "key",
        "project",
        "name",
        "type",
        "unit",
        column("stripe_meter_event_name", "Stripe meter event"),
        column("updated_at", "Updated"),
    ]
    list_filter = ["project", "type"]
    search_fields = ["key", "name", "id", "stripe_meter_event_name"]
    list_select_related = ["project"]

    def get_readonly_fields(self, request: HttpRequest, obj: Feature | None = None) -> list[str]:
        fixed = ["stripe_meter_id", "stripe_meter_event_name", "created_at", "updated_at"]
        return [*fixed, "project", "key"] if obj is not None else fixed

    def has_delete_permission(self, request: HttpRequest, obj: Feature | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Feature, form: Any, change: bool) -> None:
        actor = Actor.user(request.user)
        data = form.cleaned_data
        if change:
            updated = feature_update(
                actor=actor,
                feature=obj,
                name=data["name"],
                type=data["type"],
                unit=data["unit"],
                usage_formula=data["usage_formula"],
            )
        else:
            updated = feature_create(
                project=data["project"],
                actor=actor,
                key=data["key"],
                name=data["name"],
                type=data["type"],
                unit=data["unit"],
                usage_formula=data["usage_formula"],
            )
        obj.pk = updated.pk


class ProductFeatureForm(forms.ModelForm):  # type: ignore[type-arg]
    value = forms.CharField(
        required=False,
        help_text=(
            "JSON. Boolean feature: true or false. Metered, credits or allocation: an integer, or null for "
            'unlimited. Static: any JSON value ("text" with quotes). Tick "overage allowed" to let a metered '
            "feature's use go past this limit (its metered price bills it). Credits: a rollover cap carries up to that "
            'many of a paid period\'s unspent credits into the next, and "credits granted" every month or week grants the '
            "value that often whatever the billing interval. Usage windows (metered): limits per calendar "
            'window (UTC) beside the period\'s, as JSON: {"minute": 100, "day": 5000}. Spend cap (metered with '
            'overage): how far use may go past the limit, {"units": n} or {"amount": m} (minor units its metered '
            'price bills for the period), with "at_cap": "block" or "alert". Then credits (metered): the credits '
            'feature that pays for use past the limit before any overage, {"feature": "ai_credits", "cost": 2} '
            "(credits a unit). Per entity (metered): each seat or workspace of an allocation feature has its own "
            'limit a period beside the account\'s, {"feature": "seats", "limit": 50}, and may have usage windows of its '
            'own, {"feature": "seats", "limit": 50, "windows": {"day": 10}}.'
        ),
    )

    class Meta:
        model = ProductFeature
        fields = [
            "product",
            "feature",
            "value",
            "per_unit",
            "overage",
            "cap",
            "windows",
            "credits",
            "per_entity",
            "rollover",
            "cadence",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["value"] = json.dumps(self.instance.value)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        product = data.get("product") or getattr(self.instance, "product", None)
        feature = data.get("feature") or getattr(self.instance, "feature", None)
        if product is None or feature is None or "value" not in data:
            return data
        if feature.project_id != product.project_id:
            raise forms.ValidationError("The feature belongs to another project than the product.")
        try:
            raw = json.loads(data["value"] or "null")
        except ValueError:
            raise forms.ValidationError({"value": 'Not JSON: write true, 100, null or "text".'}) from None
        entry = FeatureValue(
            raw,
            bool(data.get("per_unit")),
            bool(data.get("overage")),
            data.get("rollover"),
            data.get("windows") or None,
            data.get("cap") or None,
            data.get("cadence") or None,
            data.get("credits") or None,
            data.get("per_entity") or None,
        ).api()
        features = Feature.objects.filter(project_id=feature.project_id)
        try:
            feature_value_parse(
                feature_type=feature.type,
                value=entry,
                param=feature.key,
                credit_features=features.filter(type=Feature.Type.CREDITS).values_list("key", flat=True),
                allocation_features=features.filter(type=Feature.Type.ALLOCATION).values_list(
                    "key", flat=True
                ),
            )
        except InvalidRequest as exc:
            raise forms.ValidationError({"value": exc.message}) from None
        data["entry"] = entry
        return data


@admin.register(ProductFeature)
class ProductFeatureAdmin(_ServiceWrites, ModelAdmin[ProductFeature]):
    """The value each product gives each feature. Adding, changing or removing one replaces the product's
    feature map through `product_update`, exactly as the products API does (audited, Stripe told)."""

    form = ProductFeatureForm
    list_display = [
        "product",
        "feature",
        column("value", "Value"),
        column("per_unit", "Per unit", boolean=True),
        column("overage", "Overage allowed", boolean=True),
        column("cap", "Spend cap"),
        column("windows", "Usage windows"),
        column("rollover", "Rollover cap"),
        column("cadence", "Credits granted"),
    ]
    list_filter = ["product__project", "feature__type"]
    search_fields = ["product__key", "feature__key"]
    list_select_related = ["product", "feature"]

    def get_readonly_fields(self, request: HttpRequest, obj: ProductFeature | None = None) -> list[str]:
        return ["product", "feature"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: ProductFeature, form: Any, change: bool) -> None:
        features = _feature_values(obj.product)
        features[obj.feature.key] = form.cleaned_data["entry"]
        product_update(actor=Actor.user(request.user), product=obj.product, features=features)
        obj.pk = ProductFeature.objects.get(product=obj.product, feature=obj.feature).pk

    def delete_model(self, request: HttpRequest, obj: ProductFeature) -> None:
        features = _feature_values(obj.product)
        features.pop(obj.feature.key, None)
        product_update(actor=Actor.user(request.user), product=obj.product, features=features)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ProductFeature]) -> None:
        for value in queryset.select_related("product", "feature"):
            self.delete_model(request, value)
