"""The look shared by every hosted page (Checkout, customer portal, hosted invoice): one stylesheet, one page
layout, and the formatting of amounts and dates, so a customer moving between them sees one product.

The layout is Stripe's: a summary column (what is being paid, how much) beside a panel (the form or the
details), side by side on a wide screen and stacked on a phone. :func:`page` escapes only the title; callers
pass HTML they have escaped themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from stripe_emulator.core.currencies import ZERO_DECIMAL

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}

STYLE = """
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:15px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Ubuntu,sans-serif;
color:#1a1f36;background:#fff}
a{color:#635bff;text-decoration:none}a:hover{text-decoration:underline}
code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
h1,h2,h3{margin:0;font-weight:600}
h2{font-size:16px;margin:0 0 12px}
.layout{display:flex;flex-direction:column;min-height:100vh}
.summary{padding:24px 20px;background:#f6f9fc;border-bottom:1px solid #e3e8ee}
.panel{padding:24px 20px 32px}
.inner{max-width:440px;margin:0 auto}
.brand{display:flex;align-items:center;gap:10px;margin-bottom:28px;font-weight:600;color:#1a1f36}
.brand .mark{width:28px;height:28px;border-radius:6px;background:#635bff;color:#fff;display:grid;
place-items:center;font-size:15px}
.badge{font-size:11px;font-weight:600;letter-spacing:.04em;text-transform:uppercase;padding:2px 6px;
border-radius:4px;background:#ffde92;color:#a04100}
.eyebrow{color:#697386;font-size:16px;font-weight:500;margin:0 0 4px}
.amount{font-size:36px;font-weight:600;letter-spacing:-.02em;line-height:1.15;margin:0}
.amount.title{font-size:28px}
.amount small{font-size:15px;font-weight:500;color:#697386;letter-spacing:0}
.then{color:#697386;margin:6px 0 0}
.lines{width:100%;border-collapse:collapse;margin-top:24px}
.lines td{padding:10px 0;vertical-align:top;border-bottom:1px solid #e3e8ee}
.lines td.num{text-align:right;white-space:nowrap;padding-left:16px}
.lines .name{font-weight:500}.lines .sub{display:block;color:#697386;font-size:13px}
.totals{margin:0;padding:0}
.totals div{display:flex;justify-content:space-between;gap:16px;padding:8px 0}
.totals dt{color:#4f566b}.totals dd{margin:0;white-space:nowrap}
.totals .grand{border-top:1px solid #e3e8ee;font-weight:600}.totals .grand dt{color:#1a1f36}
label{display:block;font-size:13px;font-weight:500;color:#4f566b;margin:16px 0 6px}
input[type=text],input[type=email],select{width:100%;padding:10px 12px;font:inherit;color:#1a1f36;background:#fff;
border:1px solid #d5dbe1;border-radius:6px;box-shadow:0 1px 1px rgba(0,0,0,.03)}
input[readonly]{background:#f6f9fc;color:#4f566b}
input:focus,select:focus{outline:none;border-color:#635bff;box-shadow:0 0 0 3px rgba(99,91,255,.25)}
.hint{display:block;color:#697386;font-size:13px;margin-top:6px}
.button{display:block;width:100%;margin-top:20px;padding:12px 16px;font:inherit;font-weight:600;color:#fff;
background:#635bff;border:0;border-radius:6px;cursor:pointer;text-align:center;box-shadow:0 1px 2px rgba(0,0,0,.12)}
.button:hover{background:#5147e5;text-decoration:none}
.button.secondary{background:#fff;color:#1a1f36;border:1px solid #d5dbe1;box-shadow:none}
.button.secondary:hover{background:#f6f9fc}
.button.danger{background:#fff;color:#c0123c;border:1px solid #f2c2cc;box-shadow:none}
.buttons{display:flex;gap:10px;flex-wrap:wrap}.buttons .button{flex:1 1 160px;width:auto}
.note{color:#697386;font-size:13px;margin:12px 0 0;text-align:center}
.notice,.error{padding:12px 14px;border-radius:6px;margin:0 0 16px}
.notice{background:#eef5ff;color:#1a3d7c}.error{background:#fff0f1;color:#a41c4e}
.success{text-align:center;padding:24px 0}.success .tick{width:48px;height:48px;border-radius:50%;
background:#1ea672;color:#fff;display:grid;place-items:center;font-size:26px;margin:0 auto 12px}
.card{border:1px solid #e3e8ee;border-radius:8px;padding:16px;margin:0 0 16px}
.row{display:flex;justify-content:space-between;align-items:baseline;gap:12px;flex-wrap:wrap}
.muted{color:#697386}
.pill{display:inline-block;font-size:12px;font-weight:600;padding:1px 8px;border-radius:10px;background:#e3e8ee;
color:#3c4257;text-transform:capitalize}
.pill.paid,.pill.active,.pill.trialing{background:#d7f7c2;color:#05690d}
.pill.open,.pill.past_due,.pill.incomplete{background:#fcedb9;color:#a04100}
.pill.void,.pill.uncollectible,.pill.canceled,.pill.unpaid{background:#ffe7f2;color:#b3093c}
.list{list-style:none;margin:0;padding:0}.list li{padding:10px 0;border-bottom:1px solid #e3e8ee}
.list.plain li{padding:0;border:0;font-weight:500}
.card form{margin:0}.card label{margin-top:12px}.card .button{margin-top:12px}
.spaced{margin-top:24px}
details{margin-top:24px;color:#4f566b;font-size:13px}summary{cursor:pointer}
details table{width:100%;border-collapse:collapse;margin-top:8px}details td{padding:4px 0}
.footer{color:#a3acb9;font-size:12px;margin-top:32px;text-align:center}
section+section{margin-top:28px}
@media (min-width:900px){
.layout{flex-direction:row}
.summary{flex:1 1 50%;padding:72px 64px 48px;border-bottom:0;border-right:1px solid #e3e8ee;
display:flex;justify-content:flex-end}
.panel{flex:1 1 50%;padding:72px 64px 48px;display:flex;justify-content:flex-start}
.summary .inner,.panel .inner{margin:0;width:100%;max-width:400px}
}
"""


def format_amount(amount: int | None, currency: str | None) -> str:
    """Minor units as a customer reads them: ``1900, "usd"`` → ``$19.00``; zero-decimal currencies have no
    minor unit (``500, "jpy"`` → ``¥500``); without a symbol the code follows (``1900, "chf"`` → ``19.00 CHF``)."""
    if amount is None or currency is None:
        return "—"
    code = currency.lower()
    value = f"{amount:,}" if code in ZERO_DECIMAL else f"{amount / 100:,.2f}"
    if value.startswith("-"):
        value, sign = value[1:], "-"
    else:
        sign = ""
    symbol = SYMBOLS.get(code)
    return f"{sign}{symbol}{value}" if symbol else f"{sign}{value} {code.upper()}"


def format_date(timestamp: int | None) -> str:
    """``Dec 7, 2026`` (UTC), as Stripe's hosted pages write dates."""
    if not timestamp:
        return "—"
    moment = datetime.fromtimestamp(timestamp, UTC)
    return f"{moment:%b} {moment.day}, {moment.year}"


def per_interval(recurring: dict[str, Any] | None) -> str:
    """``/month``, ``every 3 months``; empty for a one-time price."""
    if not recurring:
        return ""
    count = int(recurring.get("interval_count") or 1)
    unit = str(recurring["interval"])
    return f"/{unit}" if count == 1 else f" every {count} {unit}s"


def per_interval_words(recurring: dict[str, Any] | None) -> str:
    """``per month``, ``every 3 months``; empty for a one-time price."""
    every = per_interval(recurring)
    return f"per {every[1:]}" if every.startswith("/") else every.strip()


def pill(status: str) -> str:
    return f'<span class="pill {escape(status)}">{escape(status.replace("_", " "))}</span>'


def page(*, title: str, summary: str, panel: str) -> str:
    """A whole hosted page: the summary column and the panel, each already-escaped HTML."""
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width,initial-scale=1">',
            '<link rel="icon" href="/favicon.ico" type="image/x-icon">',
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
            '<div class="layout">',
            '<aside class="summary"><div class="inner">',
            '<div class="brand"><span class="mark">S</span><span>Stripe emulator</span>'
            '<span class="badge">Test mode</span></div>',
            summary,
            "</div></aside>",
            '<main class="panel"><div class="inner">',
            panel,
            '<p class="footer">Powered by the Stripe emulator · no real money moves</p>',
            "</div></main></div></body></html>",
        ]
    )
