"""Display helpers shared by the billing admin pages: money columns ("$49.00", sorted by the stored minor
units), read-only detail pages that show money as money, and links to an object in Stripe's dashboard.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import Model
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core.money import money_format


def money_column(field: str, description: str = "") -> Callable[[Any], str]:
    """A list or detail column showing the money field `field` of a row with a `currency` as "$49.00", sorted by
    the stored minor units. It keeps the field's name (and, without a `description`, its label), so it takes the
    raw field's place."""

    @admin.display(description=description or field.replace("_", " ").capitalize(), ordering=field)
    def column(obj: Any) -> str:
        value = getattr(obj, field)
        return "-" if value is None else money_format(value, obj.currency)  # None: a tiered price

    column.__name__ = field
    return column


def read_only_page(
    model: type[Model],
    *,
    money: tuple[str, ...],
    hidden: tuple[str, ...] = (),
    shown_as: dict[str, Callable[[Any], str]] | None = None,
) -> tuple[list[Any], list[str]]:
    """`readonly_fields, exclude` of a detail page showing every field of `model` read-only, the `money` fields as
    money, the `hidden` ones not at all, and the fields of `shown_as` through their display function (money
    inside JSON, such as a payment's items). The raw fields shown otherwise are excluded from the form: a field
    neither read-only nor excluded would be editable."""
    shown_as = shown_as or {}
    readonly = [
        money_column(field.name) if field.name in money else shown_as.get(field.name, field.name)
        for field in model._meta.fields
        if field.name not in hidden
    ]
    return readonly, [*hidden, *money, *shown_as]


def payment_items(payment: Any) -> str:
    """A payment's frozen items, one per line: "2 × credits-1000 at $15.00 = $30.00"."""
    return (
        format_html_join(
            mark_safe("<br>"),
            "{} × {} at {} = {}",
            (
                (
                    item.get("quantity", 1),
                    item.get("price_key") or item.get("price", ""),
                    money_format(int(item.get("unit_amount") or 0), payment.currency),
                    money_format(
                        int(
                            item.get(
                                "amount", (item.get("unit_amount") or 0) * int(item.get("quantity") or 1)
                            )
                        ),
                        payment.currency,
                    ),
                )
                for item in payment.items or []
            ),
        )
        or "-"
    )


def invoice_lines(invoice: Any) -> str:
    """An invoice's lines, one per line: "Professional (× 2): $60.00" (negative for a proration credit)."""
    return (
        format_html_join(
            mark_safe("<br>"),
            "{} (× {}): {}",
            (
                (
                    line.get("description") or line.get("stripe_price_id") or "line",
                    line.get("quantity") or 1,
                    money_format(int(line.get("amount") or 0), line.get("currency") or invoice.currency),
                )
                for line in invoice.lines or []
            ),
        )
        or "-"
    )


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
