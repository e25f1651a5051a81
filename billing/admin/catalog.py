"""Catalog records in the back office: products and prices, read-only where Stripe mirrors them (changes go
through the catalog services and the API).
"""

from django.contrib import admin

from billing.admin.display import money_column, read_only_page
from billing.models import Price, Product
from core.admin_generics import ModelAdmin


@admin.register(Product)
class ProductAdmin(ModelAdmin[Product]):
    list_display = ["key", "project", "name", "active", "stripe_product_id"]
    list_filter = ["project", "active"]
    search_fields = ["key", "name", "stripe_product_id", "id"]
    list_select_related = ["project"]
    readonly_fields = ["id", "project", "key", "stripe_product_id", "created_at", "updated_at"]


@admin.register(Price)
class PriceAdmin(ModelAdmin[Price]):
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
