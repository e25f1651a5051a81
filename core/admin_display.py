"""What every back-office page shares: list columns under a human header, and the rule that rows mirrored from
Stripe (or with money attached) are neither added nor deleted in the admin.

A column header Django derives from a field name reads like code ("Stripe product id", "Actor repr");
`column("stripe_product_id", "Stripe product")` takes the field's place in `list_display` with a header written
for people, renders the value exactly as Django renders the field, and sorts by it.
"""

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import display_for_field
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.text import capfirst


def column(name: str, description: str, *, boolean: bool = False) -> Callable[[Any], Any]:
    """The model field `name` as a list column headed `description` (its cells keep the class `field-<name>`)."""

    @admin.display(description=description, ordering=name, boolean=boolean)
    def render(obj: Any) -> Any:
        value = getattr(obj, name)
        if boolean or value is None:
            return value  # Django draws the boolean icon, or the empty-value dash
        return display_for_field(value, obj._meta.get_field(name), "-")

    render.__name__ = name
    return render


class NoAddOrDelete:
    """Rows that Stripe mirrors, that money hangs on, or that only services write: the admin neither adds nor
    deletes them (the add and delete pages answer 403, and the bulk delete action is gone)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Status labels as badges: each tone's text and background colours have a contrast ratio above 7:1 (WCAG AAA;
# AA asks 4.5:1), in the light and the dark admin theme alike, since both colours are set.
STATUS_TONES = {
    "good": ("#14532d", "#dcfce7"),
    "bad": ("#7f1d1d", "#fee2e2"),
    "wait": ("#713f12", "#fef9c3"),
    "neutral": ("#1f2937", "#e5e7eb"),
}
_TONE_OF_STATUS = {
    **dict.fromkeys(
        ("active", "succeeded", "paid", "processed", "completed", "delivered", "fixed", "complete"), "good"
    ),
    **dict.fromkeys(
        (
            "failed",
            "past_due",
            "unpaid",
            "disputed",
            "incomplete_expired",
            "uncollectible",
            "dead",
            "disabled",
            "open_drift",
        ),
        "bad",
    ),
    **dict.fromkeys(
        (
            "pending",
            "processing",
            "trialing",
            "requires_payment_method",
            "requires_action",
            "incomplete",
            "open",
            "running",
            "retrying",
            "draft",
            "partially_refunded",
        ),
        "wait",
    ),
}


def status_badge(value: str, label: str) -> str:
    text, background = STATUS_TONES[_TONE_OF_STATUS.get(value, "neutral")]
    return format_html(
        '<span class="tg-status" data-status="{}" style="color:{};background:{};padding:1px 6px;'
        'border-radius:8px">{}</span>',
        value,
        text,
        background,
        label,
    )


def status_column(name: str = "status", description: str = "Status") -> Callable[[Any], str]:
    """The status field `name` as a coloured badge with its human label, sorted by the stored value."""

    @admin.display(description=description, ordering=name)
    def render(obj: Any) -> str:
        value = getattr(obj, name)
        if not value:
            return "-"
        label = display_for_field(value, obj._meta.get_field(name), "-")
        return status_badge(value, capfirst(str(label).replace("_", " ")))

    render.__name__ = name
    return render
