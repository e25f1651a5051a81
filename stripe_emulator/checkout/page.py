"""The hosted Checkout page (``GET /checkout/pay/{id}``): plain server-rendered HTML, no JavaScript, in the
layout every hosted page shares (:mod:`stripe_emulator.core.html`).

The form posts to ``/_emulator/checkout/sessions/{id}/complete`` with ``ui=html``, which answers with a 303
to the session's ``success_url`` on success and this page again (with the error) otherwise. A card that
needs 3-D Secure shows an "Authenticate" step posting to ``…/authenticate``. Every value is escaped.

Every amount the page states is what is charged: today's is the session's ``amount_total`` (after its
discount and tax), the renewals are :meth:`~stripe_emulator.checkout.models.CheckoutBackend.checkout_session_renewals`
(a ``once`` coupon only today, a ``repeating`` one for its months, the tax on each). While automatic tax waits
for the customer's country the amounts say "plus tax"; the form carries the amounts it showed (``quote``), and
a submit whose country or promotion code changes them shows the new amounts instead of charging (see
``checkout_session_complete_control``). A subscription with a free trial reads as Stripe's does: nothing is
due today (``$0.00``), the button starts the trial, and the page says what will be charged and from when.
"""

from __future__ import annotations

from html import escape
from typing import Any

from stripe_emulator.checkout.models import CheckoutBackend
from stripe_emulator.checkout.models.renewals import Renewal
from stripe_emulator.core.account import Account
from stripe_emulator.core.html import format_amount, format_date, page, per_interval, per_interval_words
from stripe_emulator.core.store import StripeObject
from stripe_emulator.payments import cards

DAY = 86_400


def _line_rows(items: list[StripeObject], trial_days: int | None) -> str:
    """Each line at its price (quantity × unit amount, tiers or packages): the discount and the tax are rows of
    the totals."""
    rows = []
    for item in items:
        price = item["price"]
        every = per_interval(price.get("recurring"))
        detail = f"Qty {item['quantity']}" if item["quantity"] is not None else "Billed by usage"
        transform = price.get("transform_quantity")
        if item["quantity"] is None:
            pass
        elif price["billing_scheme"] == "tiered":
            detail += f" · {price['tiers_mode']} tiers"
        elif transform:
            detail += (
                f" · {format_amount(price['unit_amount'], price['currency'])}{every} per "
                f"{transform['divide_by']} units, rounded {transform['round']}"
            )
        elif item["quantity"] != 1:
            detail += f" · {format_amount(price['unit_amount'], price['currency'])}{every} each"
        if trial_days:
            amount = f"{trial_days} days free"
            detail += f" · {format_amount(item['amount_subtotal'], item['currency'])}{every} after"
        else:
            amount = format_amount(item["amount_subtotal"], item["currency"]) + every
        rows.append(
            '<tr><td><span class="name">{name}</span><span class="sub">{detail}</span></td>'
            '<td class="num">{amount}</td></tr>'.format(
                name=escape(str(item["description"] or price["id"])),
                detail=escape(detail),
                amount=escape(amount),
            )
        )
    return f'<table class="lines">{"".join(rows)}</table>'


def _tax_pending(session: StripeObject) -> bool:
    """Automatic tax still waiting for the customer's country: the amounts shown are before tax."""
    tax = session["automatic_tax"]
    return bool(tax["enabled"]) and tax["status"] != "complete"


def _now(session: StripeObject) -> str:
    text = format_amount(session["amount_total"], session["currency"])
    return f"{text} plus tax" if _tax_pending(session) else text


def _schedule(renewals: list[Renewal], currency: str, recurring: dict[str, Any] | None) -> str:
    """The renewals in words: ``$36.75/month for 2 months, then $49.00/month``."""
    every = per_interval(recurring)
    unit, count = (
        (recurring or {}).get("interval") or "period",
        int((recurring or {}).get("interval_count") or 1),
    )
    parts = []
    for renewal in renewals:
        text = format_amount(renewal.amount, currency) + every + ("" if renewal.taxed else " plus tax")
        if renewal.times is not None:
            periods = renewal.times * count
            text += f" for {periods} {unit}{'' if periods == 1 else 's'}"
        parts.append(text)
    return ", then ".join(parts)


def quote_of(account: Account, session: StripeObject) -> str:
    """The amounts the page states, as the form carries them back: today's, then each renewal's (a country
    without tax leaves them as stated: "plus tax" was nothing)."""
    renewals = account.backend(CheckoutBackend).checkout_session_renewals(session)
    return ";".join([str(session["amount_total"]), *(f"{r.amount}x{r.times}" for r in renewals)])


def _totals(rows: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<div{' class=grand' if index == len(rows) - 1 else ''}><dt>{escape(label)}</dt>"
        f"<dd>{escape(value)}</dd></div>"
        for index, (label, value) in enumerate(rows)
    )
    return f'<dl class="totals">{body}</dl>'


def _test_cards() -> str:
    rows = "\n".join(
        f"<tr><td><code>{escape(' '.join(card.number[i : i + 4] for i in range(0, 16, 4)))}</code></td>"
        f"<td>{escape(card.description)}</td></tr>"
        for card in cards.CARDS.values()
    )
    return f"<details><summary>Test cards</summary><table>{rows}</table></details>"


def render_page(
    account: Account,
    session: StripeObject,
    *,
    error: str | None = None,
    pending_payment_intent: str | None = None,
    card_number: str = "4242 4242 4242 4242",
    email: str | None = None,
    customer_email: str | None = None,
    notice: str | None = None,
    country: str | None = None,
) -> str:
    """``customer_email``: the email of the session's existing customer, shown and not editable (Stripe's
    Checkout does not let the customer change it). ``notice``: why the page is shown again (its amounts
    changed); ``country``: the billing country typed last."""
    sid = escape(session["id"])
    currency = session["currency"]
    total = session["amount_total"]
    items = account.backend(CheckoutBackend).line_items_of(session["id"])
    recurring = next((i["price"].get("recurring") for i in items if i["price"].get("recurring")), None)
    every = per_interval(recurring)
    trial = (session.get("_subscription_data") or {}).get("trial_period_days")
    trial_ends = account.now() + int(trial) * DAY if trial else None
    name = str(items[0]["description"] or "") if len(items) == 1 else ""
    renewals = account.backend(CheckoutBackend).checkout_session_renewals(session)
    # Without a licensed recurring item (only metered ones) a trial states today's total, as before.
    schedule = (
        _schedule(renewals, currency, recurring) if renewals else format_amount(total, currency) + every
    )

    summary: list[str] = []
    if session["mode"] == "setup":
        summary += _setup_summary()
    elif trial:
        summary += [
            f'<p class="eyebrow">Try {escape(name or "your subscription")}</p>',
            f'<p class="amount">{escape(str(trial))} days free</p>',
            f'<p class="then">Then {escape(schedule)} starting {escape(format_date(trial_ends))}</p>',
        ]
    elif session["mode"] == "subscription":
        pending = "plus tax, " if _tax_pending(session) else ""
        same = len(renewals) == 1 and renewals[0].amount == total
        summary += [
            f'<p class="eyebrow">Subscribe to {escape(name or "your subscription")}</p>',
            f'<p class="amount">{escape(format_amount(total, currency))} '
            f"<small>{escape(pending + (per_interval_words(recurring) if same else 'due today'))}</small></p>",
        ]
        if renewals and not same:
            summary.append(f'<p class="then">Then {escape(schedule)}</p>')
    else:
        summary += [
            f'<p class="eyebrow">Pay {escape(name or "Stripe emulator")}</p>',
            f'<p class="amount">{escape(format_amount(total, currency))}'
            f"{' <small>plus tax</small>' if _tax_pending(session) else ''}</p>",
        ]
    if session["mode"] != "setup":
        summary.append(_line_rows(items, trial))
        after = (renewals[0] if renewals else Renewal(total or 0, None, True)) if trial else None
        summary.append(_totals(_total_rows(session, after=after, every=every)))
    in_currency = f" · {escape(currency.upper())}" if currency else ""  # none in setup mode without one
    summary.append(f'<p class="muted"><small>Session <code>{sid}</code>{in_currency}</small></p>')

    panel: list[str] = []
    if error:
        panel.append(f'<p class="error" role="alert">{escape(error)}</p>')
    if notice:
        panel.append(f'<p class="notice" role="status">{escape(notice)}</p>')
    status = session["status"]
    if status == "complete":
        panel.append(
            '<div class="success"><div class="tick">✓</div><h2>Thanks for your order</h2>'
            '<p class="muted">This Checkout Session is complete.</p></div>'
        )
        success = session["success_url"]
        if success:
            target = success.replace("{CHECKOUT_SESSION_ID}", session["id"])
            panel.append(f'<a class="button" href="{escape(target)}">Continue</a>')
    elif status == "expired":
        panel.append('<p class="error">This Checkout Session has expired.</p>')
    elif pending_payment_intent is not None:
        auth_url = escape(f"/_emulator/checkout/sessions/{session['id']}/authenticate")
        panel.append(
            "<h2>Authenticate</h2><p>Your bank asks you to confirm this payment (3-D Secure test "
            f"challenge for <code>{escape(pending_payment_intent)}</code>).</p>"
            f'<form method="post" action="{auth_url}"><input type="hidden" name="ui" value="html">'
            '<div class="buttons"><button class="button" name="outcome" value="succeed" type="submit">'
            "Complete authentication</button>"
            '<button class="button secondary" name="outcome" value="fail" type="submit">Fail authentication'
            "</button></div></form>"
        )
    else:
        complete_url = escape(f"/_emulator/checkout/sessions/{session['id']}/complete")
        if customer_email:
            email_field = (
                f'<input type="email" id="email" name="email" value="{escape(customer_email)}" readonly>'
            )
        else:
            email_field = (
                f'<input type="email" id="email" name="email" value="{escape(email or session["customer_email"] or "")}"'
                ' placeholder="you@example.com" autocomplete="email" required>'
            )
        tax_note = " The tax follows from your billing country and is shown before you pay."
        if trial:
            button = "Start trial"
            note = f"{schedule} after the trial ends on {format_date(trial_ends)}. Nothing is charged today."
        elif session["mode"] == "setup":
            button = "Save card"
            note = "Your card is saved for future payments; nothing is charged now."
        elif session["mode"] == "subscription":
            button = "Subscribe"
            then = f", then {schedule}" if renewals else ""
            note = f"You will be charged {_now(session)} now{then}."
        else:
            button = f"Pay {_now(session)}"
            note = ""
        if _tax_pending(session) and session["mode"] != "setup":
            note = (note + tax_note).strip()
        panel.append(
            "<h2>Contact information</h2>"
            f'<form method="post" action="{complete_url}"><input type="hidden" name="ui" value="html">'
            f'<input type="hidden" name="quote" value="{escape(quote_of(account, session))}">'
            f'<label for="email">Email</label>{email_field}'
            + _address_field(account, session, country)
            + '<label for="card">Card number</label>'
            f'<input type="text" id="card" name="card" value="{escape(card_number)}" inputmode="numeric" '
            'autocomplete="off"><span class="hint">Any future expiry date and any CVC are accepted.</span>'
            + (
                '<label for="promotion_code">Promotion code</label>'
                '<input type="text" id="promotion_code" name="promotion_code" autocomplete="off">'
                if session["allow_promotion_codes"] and not session["discounts"]
                else ""
            )
            + f'<button class="button" type="submit">{escape(button)}</button>'
            + (f'<p class="note">{escape(note)}</p>' if note else "")
            + "</form>"
        )
        panel.append(_test_cards())
    if status == "open" and session["cancel_url"]:
        panel.append(f'<p class="note"><a href="{escape(session["cancel_url"])}">← Cancel and return</a></p>')
    return page(title=f"Checkout {session['id']}", summary="\n".join(summary), panel="\n".join(panel))


def _setup_summary() -> list[str]:
    """Setup mode charges nothing: the page says the card is saved for later payments."""
    return [
        '<p class="eyebrow">Set up a payment method</p>',
        '<p class="amount">Save your card</p>',
        '<p class="then">Nothing is charged today: the card is kept for future payments.</p>',
    ]


def _total_rows(session: StripeObject, *, after: Renewal | None, every: str) -> list[tuple[str, str]]:
    """``after``: with a trial, the first charge when it ends."""
    currency = session["currency"]
    if after is not None:
        return [
            ("Subtotal", format_amount(session["amount_subtotal"], currency)),
            (
                "Total after trial",
                format_amount(after.amount, currency) + every + ("" if after.taxed else " plus tax"),
            ),
            ("Total due today", format_amount(0, currency)),
        ]
    discount = session["total_details"]["amount_discount"]
    return [
        ("Subtotal", format_amount(session["amount_subtotal"], currency)),
        *([("Discount", "−" + format_amount(discount, currency))] if discount else []),
        *_tax_row(session, currency),
        ("Total due today", _now(session)),
    ]


def _tax_row(session: StripeObject, currency: str) -> list[tuple[str, str]]:
    """Automatic tax: the tax once an address is known (inclusive tax is inside the prices)."""
    tax = session["automatic_tax"]
    if not tax["enabled"]:
        return []
    if tax["status"] != "complete":
        return [("Tax", "Calculated from your address")]
    return [("Tax", format_amount(session["total_details"]["amount_tax"], currency))]


def _address_field(account: Account, session: StripeObject, typed: str | None) -> str:
    """The billing country, asked with automatic tax or ``billing_address_collection=required`` (prefilled
    with the one typed last, else the session's tax country or the customer's address)."""
    if not (session["automatic_tax"]["enabled"] or session["billing_address_collection"] == "required"):
        return ""
    customer = account.store.get("customer", session["customer"]) if session["customer"] else None
    country = (
        typed or session.get("_tax_country") or ((customer or {}).get("address") or {}).get("country") or ""
    )
    return (
        '<label for="country">Billing country</label>'
        f'<input type="text" id="country" name="address[country]" value="{escape(country)}" maxlength="2" '
        'placeholder="DE" autocomplete="country" required>'
    )
