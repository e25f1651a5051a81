"""Display helpers shared by the billing admin pages: money columns ("$49.00", sorted by the stored minor
units), read-only detail pages that show money as money, and links to an object in Stripe's dashboard.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import Model
from django.utils.html import format_html

from core.money import money_format


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
