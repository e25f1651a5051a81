"""The hosted Checkout page (``GET /checkout/pay/{id}``): plain server-rendered HTML, no JavaScript.

The Pay form posts to ``/_emulator/checkout/sessions/{id}/complete`` with ``ui=html``, which answers with a
303 to the session's ``success_url`` on success and this page again (with the error) otherwise. A card that
needs 3-D Secure shows an "Authenticate" step posting to ``…/authenticate``. Every value is escaped.
"""

from __future__ import annotations

from html import escape

from stripe_emulator.core.account import Account
from stripe_emulator.core.currencies import ZERO_DECIMAL
from stripe_emulator.core.store import StripeObject
from stripe_emulator.payments import cards

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}
INTERVALS = {"day": "day", "week": "week", "month": "month", "year": "year"}

STYLE = """
body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#1a1f36}
table{border-collapse:collapse;width:100%}td,th{padding:.35rem .5rem;border-bottom:1px solid #e3e8ee;text-align:left}
.num{text-align:right}.error{background:#fde8e8;color:#9b1c1c;padding:.6rem;border-radius:4px}
.notice{background:#e8f5fd;padding:.6rem;border-radius:4px}label{display:block;margin:.6rem 0 .2rem}
input[type=text],input[type=email]{width:100%;padding:.4rem;font-size:1rem}
button{margin-top:1rem;padding:.5rem 1.4rem;font-size:1rem}small{color:#697386}
"""


def format_amount(amount: int | None, currency: str | None) -> str:
    """``1234, "usd"`` → ``$12.34``; zero-decimal currencies have no minor unit (``500, "jpy"`` → ``¥500``)."""
    if amount is None or currency is None:
        return "—"
    code = currency.lower()
    value = f"{amount:,}" if code in ZERO_DECIMAL else f"{amount / 100:,.2f}"
    symbol = SYMBOLS.get(code)
    return f"{symbol}{value}" if symbol else f"{value} {code.upper()}"


def _line_rows(account: Account, session: StripeObject) -> str:
    rows = []
    items = account.store.newest_first("item", lambda item: item.get("_session") == session["id"])
    for item in items:
        price = item["price"]
        recurring = price.get("recurring")
        every = ""
        if recurring:
            count = recurring.get("interval_count") or 1
            unit = INTERVALS.get(recurring["interval"], recurring["interval"])
            every = f" / {unit}" if count == 1 else f" every {count} {unit}s"
        rows.append(
            "<tr><td>{desc}</td><td class=num>{qty}</td><td class=num>{unit}{every}</td>"
            "<td class=num>{total}</td></tr>".format(
                desc=escape(str(item["description"] or price["id"])),
                qty=escape(str(item["quantity"])),
                unit=escape(format_amount(price["unit_amount"], price["currency"])),
                every=escape(every),
                total=escape(format_amount(item["amount_total"], item["currency"])),
            )
        )
    return "\n".join(rows)


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
) -> str:
    sid = escape(session["id"])
    complete_url = escape(f"/_emulator/checkout/sessions/{session['id']}/complete")
    auth_url = escape(f"/_emulator/checkout/sessions/{session['id']}/authenticate")
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>Checkout {sid}</title><style>{STYLE}</style></head><body>",
        "<h1>Stripe emulator — Checkout</h1>",
        f"<p><small>Session <code>{sid}</code> · mode {escape(session['mode'])}</small></p>",
        "<table><thead><tr><th>Item</th><th class=num>Qty</th><th class=num>Price</th>"
        "<th class=num>Amount</th></tr></thead><tbody>",
        _line_rows(account, session),
        "</tbody><tfoot><tr><th colspan=3>Total</th>"
        f"<th class=num>{escape(format_amount(session['amount_total'], session['currency']))}</th></tr>"
        "</tfoot></table>",
    ]
    trial = (session.get("_subscription_data") or {}).get("trial_period_days")
    if trial:
        parts.append(f"<p class=notice>Free trial: {escape(str(trial))} days, nothing is charged today.</p>")
    if error:
        parts.append(f"<p class=error role=alert>{escape(error)}</p>")
    status = session["status"]
    if status == "complete":
        parts.append("<p class=notice>This Checkout Session is complete. Thank you!</p>")
        success = session["success_url"]
        if success:
            target = success.replace("{CHECKOUT_SESSION_ID}", session["id"])
            parts.append(f'<p><a href="{escape(target)}">Continue</a></p>')
    elif status == "expired":
        parts.append("<p class=error>This Checkout Session has expired.</p>")
    elif pending_payment_intent is not None:
        parts.append(
            "<h2>Authenticate</h2><p>Your bank asks you to confirm this payment (3-D Secure test "
            f"challenge for <code>{escape(pending_payment_intent)}</code>).</p>"
            f'<form method=post action="{auth_url}"><input type=hidden name=ui value=html>'
            "<button name=outcome value=succeed type=submit>Complete authentication</button> "
            "<button name=outcome value=fail type=submit>Fail authentication</button></form>"
        )
    else:
        default_email = email or session["customer_email"] or ""
        parts.append(
            f'<form method=post action="{complete_url}"><input type=hidden name=ui value=html>'
            f'<label for=email>Email</label><input type=email id=email name=email value="{escape(default_email)}">'
            f'<label for=card>Card number</label><input type=text id=card name=card value="{escape(card_number)}" '
            "autocomplete=off><small>Any future expiry date and any CVC are accepted.</small><br>"
            f"<button type=submit>Pay {escape(format_amount(session['amount_total'], session['currency']))}"
            "</button></form>"
        )
        parts.append(_test_cards())
    if status == "open" and session["cancel_url"]:
        parts.append(f'<p><a href="{escape(session["cancel_url"])}">Cancel and return</a></p>')
    parts.append("</body></html>")
    return "\n".join(parts)
