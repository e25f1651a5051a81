"""What every back-office page shares: list columns under a human header, status badges and filters that name a
status the same way, and the rules that rows mirrored from Stripe (or with money attached) are neither added nor
deleted in the admin, and that pages nobody may edit are views, without a Save button.

A column header Django derives from a field name reads like code ("Stripe product id", "Actor repr");
`column("stripe_product_id", "Stripe product")` takes the field's place in `list_display` with a header written
for people, renders the value exactly as Django renders the field, and sorts by it.
"""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import display_for_field
from django.http import HttpRequest
from django.utils import formats
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


# The order of every list of things that happen (payments, invoices, events …): the newest first. Django's own
# default, the primary key descending, is random here (ids are random).
NEWEST_FIRST = ("-created_at",)


class NoAddOrDelete:
    """Rows that Stripe mirrors, that money hangs on, or that only services write: the admin neither adds nor
    deletes them (the add and delete pages answer 403, and the bulk delete action is gone)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ViewOnly(NoAddOrDelete):
    """Rows nobody edits in the admin (what Stripe mirrors, what only services write): the detail page is "View
    payment", every field read-only and no Save button. Actions (refund, cancel, replay …) still work: they call
    services, with their own permissions."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
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
        (
            "active",
            "succeeded",
            "paid",
            "processed",
            "completed",
            "delivered",
            "fixed",
            "complete",
            "confirmed",
            "armed",
            "granted",
        ),
        "good",
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
            "charging",
        ),
        "wait",
    ),
}


def status_label(field: Any, value: Any) -> str:
    """How a status value reads wherever it is shown (its badge, the list's filter): the label of its choice, or
    for a field without choices (an invoice's status is Stripe's word) the value in words: "past_due" → "Past due"."""
    label = dict(field.flatchoices).get(value, value) if field.choices else value
    return capfirst(str(label).replace("_", " "))


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
        return status_badge(value, status_label(obj._meta.get_field(name), value))

    render.__name__ = name
    return render


# --- Stripe's Unix times, written as the back office writes moments ------------------------------------------

# Keys under which Stripe's objects carry a Unix time (besides every `*_at`, `*period_start` and `*period_end`).
_STRIPE_TIME_KEYS = frozenset(
    {
        "created",
        "start",
        "end",
        "date",
        "start_date",
        "due_date",
        "trial_start",
        "trial_end",
        "billing_cycle_anchor",
        "frozen_time",
        "available_on",
        "next_payment_attempt",
        "webhooks_delivered_at",
    }
)


def unix_time_text(value: int | None) -> str:
    """A Unix time (Stripe's seconds) as every moment in the back office reads: "2026-11-23 16:02:42Z"."""
    if not value:
        return "-"
    return str(formats.localize(datetime.fromtimestamp(int(value), tz=UTC)))


def _is_stripe_time(key: str, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int) or not 10**9 <= value < 10**10:
        return False
    return key in _STRIPE_TIME_KEYS or key.endswith(("_at", "period_start", "period_end"))


def _times_readable(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {name: _times_readable(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_times_readable(item, key) for item in value]
    return unix_time_text(value) if _is_stripe_time(key, value) else value


def stripe_json(value: Any) -> str:
    """A Stripe payload to read: indented, its Unix times written as moments ("created": "2026-11-23 16:02:42Z")."""
    text = json.dumps(_times_readable(value), indent=2, ensure_ascii=False, sort_keys=False)
    return format_html('<pre class="tg-json">{}</pre>', text)


def cut_column(name: str, description: str) -> Callable[[Any], str]:
    """The text field `name` as a list column cut to its width with an ellipsis, whole in its tooltip (class
    `tg-long`): a reference such as "auto_recharge:arc_…:1" would otherwise widen the list past the page."""

    @admin.display(description=description, ordering=name)
    def render(obj: Any) -> str:
        value = getattr(obj, name)
        if not value:
            return "-"
        return format_html('<span class="tg-long" title="{}">{}</span>', value, value)

    render.__name__ = name
    return render
