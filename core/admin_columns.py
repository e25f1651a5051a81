"""Display helpers shared by the admin pages of the catalog, billing and the back office: money columns ("$49.00",
sorted by the stored minor units), read-only detail pages that show money as money (a price's tiers, a subscription's discount included),
and links to an object in Stripe's dashboard.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import Model
from django.utils import formats
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import capfirst

from core.money import money_format


def money_column(field: str, description: str = "") -> Callable[[Any], str]:
    """A list or detail column showing the money field `field` of a row with a `currency` as "$49.00", sorted by
    the stored minor units. It keeps the field's name (and, without a `description`, its label), so it takes the
    raw field's place."""

    @admin.display(description=description or field.replace("_", " ").capitalize(), ordering=field)
    def column(obj: Any) -> str:
        value = getattr(obj, field)
        if value is None:  # a tiered price: its amounts are in its tiers
            return f"tiered ({obj.tiers_mode})" if getattr(obj, "tiers_mode", "") else "-"
        return money_format(value, obj.currency)

    column.__name__ = field
    return column


def read_only_page(
    model: type[Model],
    *,
    money: tuple[str, ...],
    hidden: tuple[str, ...] = (),
    shown_as: dict[str, Callable[[Any], str]] | None = None,
    labels: dict[str, str] | None = None,
) -> tuple[list[Any], list[str]]:
    """`readonly_fields, exclude` of a detail page showing every field of `model` read-only, the `money` fields as
    money, the `hidden` ones not at all, and the fields of `shown_as` through their display function (money
    inside JSON, such as a payment's items; a Unix time as a moment). Each keeps its field's label, or the one
    `labels` gives it. The raw fields shown otherwise are excluded from the form: a field neither read-only nor
    excluded would be editable."""
    shown_as = shown_as or {}
    labels = labels or {}

    def shown(field: Any) -> Any:
        label = labels.get(field.name) or capfirst(field.verbose_name)
        if field.name in money:
            return money_column(field.name, label)
        if field.name in shown_as:
            return _labelled(shown_as[field.name], field.name, label)
        return field.name

    readonly = [shown(field) for field in model._meta.fields if field.name not in hidden]
    return readonly, [*hidden, *money, *shown_as]


def _labelled(display: Callable[[Any], str], name: str, label: str) -> Callable[[Any], str]:
    """`display` as the detail-page row of field `name`, under `label` (a new function: `display` is shared)."""

    @admin.display(description=label)
    def render(obj: Any) -> str:
        return display(obj)

    render.__name__ = name
    return render


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
    """An invoice's lines, one per line: "1 × Professional (at $49.00 / month): $49.00", "Seats (× 3): $0.00"
    (negative for a proration credit). The quantity is added only where the description does not already say it
    (Stripe's descriptions of subscription lines start with it) and it is not 1."""
    return (
        format_html_join(
            mark_safe("<br>"),
            "{}{}: {}",
            (
                (
                    description,
                    "" if quantity == 1 or description.startswith(f"{quantity} ×") else f" (× {quantity})",
                    money_format(int(line.get("amount") or 0), line.get("currency") or invoice.currency),
                )
                for line in invoice.lines or []
                for description, quantity in [
                    (
                        line.get("description") or line.get("stripe_price_id") or "line",
                        line.get("quantity") or 1,
                    )
                ]
            ),
        )
        or "-"
    )


def _invoice_period(invoice: Any) -> tuple[Any, Any]:
    """The period an invoice bills: its lines' (the service period), else its own `period_start`/`period_end`.
    Stripe's own pair is when invoice items were added; on a subscription's first invoice both are the moment it
    was made."""
    starts = [line["period_start"] for line in invoice.lines or [] if line.get("period_start")]
    ends = [line["period_end"] for line in invoice.lines or [] if line.get("period_end")]
    if starts and ends:
        return datetime.fromtimestamp(min(starts), tz=UTC), datetime.fromtimestamp(max(ends), tz=UTC)
    return invoice.period_start, invoice.period_end


def _moment(value: Any) -> str:
    return "-" if value is None else str(formats.localize(value))


def invoice_period_start(invoice: Any) -> str:
    return _moment(_invoice_period(invoice)[0])


def invoice_period_end(invoice: Any) -> str:
    return _moment(_invoice_period(invoice)[1])


def invoice_period_column(name: str, description: str) -> Callable[[Any], str]:
    """The end of the period an invoice bills (`_invoice_period`) as a list column, sorted by `name`."""

    @admin.display(description=description, ordering=name)
    def render(invoice: Any) -> str:
        return invoice_period_end(invoice)

    render.__name__ = name
    return render


def price_tiers(price: Any) -> str:
    """A tiered price's tiers as a small table, one row per tier: "1–10 | $12.00 each", "11 and up | $9.00 each +
    $20.00 flat" (graduated: each tier's units at its rate; volume: every unit at the rate of the quantity's tier)."""
    if not price.tiers:
        return "-"
    rows = []
    first = 1
    for tier in price.tiers:
        up_to = tier.get("up_to")
        units = f"{first} and up" if up_to in (None, "inf") else f"{first}–{up_to}"
        charges = []
        if tier.get("unit_amount") is not None:
            charges.append(f"{money_format(int(tier['unit_amount']), price.currency)} each")
        if tier.get("flat_amount") is not None:
            charges.append(f"{money_format(int(tier['flat_amount']), price.currency)} flat")
        rows.append((units, " + ".join(charges) or "-"))
        if up_to not in (None, "inf"):
            first = int(up_to) + 1
    return format_html(
        '<table class="tg-tiers"><thead><tr><th>Units</th><th>Price</th></tr></thead><tbody>{}</tbody></table>',
        format_html_join("", "<tr><td>{}</td><td>{}</td></tr>", rows),
    )


def subscription_discount(subscription: Any) -> str:
    """The discount in force, in words: "25% off, repeating until 2026-12-24 (coupon launch, code LAUNCH25)"."""
    discount = subscription.discount
    if not discount:
        return "-"
    if discount.get("percent_off") is not None:
        off = f"{discount['percent_off']:g}% off"
    elif discount.get("amount_off") is not None:
        currency = discount.get("currency") or subscription.price.currency
        off = f"{money_format(int(discount['amount_off']), currency)} off"
    else:
        off = "a discount"
    terms = [off]
    if discount.get("duration"):
        terms.append(str(discount["duration"]))
    if discount.get("end"):
        terms[-1] += f" until {datetime.fromtimestamp(int(discount['end']), tz=UTC):%Y-%m-%d %H:%M} UTC"
    sources = [
        f"{name} {discount[key]}"
        for name, key in (("coupon", "coupon"), ("code", "promotion_code"))
        if discount.get(key)
    ]
    return ", ".join(terms) + (f" ({', '.join(sources)})" if sources else "")


# Why Stripe made an invoice (`billing_reason`), in words.
_BILLING_REASONS = {
    "subscription_create": "First invoice of a subscription",
    "subscription_cycle": "Renewal",
    "subscription_update": "Subscription change",
    "subscription_threshold": "Usage threshold reached",
    "subscription": "Subscription",
    "manual": "Created by hand",
    "upcoming": "Upcoming invoice",
    "quote_accept": "Quote accepted",
    "automatic_pending_invoice_item_invoice": "Pending invoice items",
}


def billing_reason_text(invoice: Any) -> str:
    reason = invoice.billing_reason
    if not reason:
        return "-"
    return _BILLING_REASONS.get(reason) or capfirst(reason.replace("_", " "))


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
