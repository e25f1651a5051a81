"""Template filters of the back office's own templates."""

import re

from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# A tag, an entity, or a run of text between them.
_PIECES = re.compile(r"(<[^>]*>|&[#\w]+;)")
# A long token: identifiers, event types, emails, ids ("entitlement.granted", "pay_FFt08Bg7…", "a.b@c.example").
_TOKEN = re.compile(r"\S{12,}")
# A place to break inside one: a dot, underscore, "@" or "/" between two letters or digits.
_BREAK = re.compile(r"([A-Za-z0-9])([._@/])(?=([A-Za-z0-9]))")


def _break_after(match: re.Match[str]) -> str:
    before, mark, after = match.groups()
    if before.isdigit() and after.isdigit():
        return match.group(0)  # inside a number ("1225.56", "10.0.0.1")
    return f"{before}{mark}<wbr>"


# A token with a part longer than this between its breaks (a Stripe Checkout session's 60 random characters) is
# shown cut with an ellipsis: whole in its tooltip, when copied, and on the detail page.
LONGEST_PART = 26


def _breakable_token(match: re.Match[str]) -> str:
    token = match.group(0)
    broken = _BREAK.sub(_break_after, token)
    if max(len(part) for part in re.split(r"<wbr>|-", broken)) > LONGEST_PART:  # browsers break after "-"
        return (
            f'<span class="tg-long" title="{token}">{token}</span>'  # already escaped: safe in an attribute
        )
    return broken


@register.filter
def breakable(html: str) -> SafeString:
    """`html` (a list cell Django rendered, already escaped) with a line-break opportunity (`<wbr>`) after each dot,
    underscore, "@" and "/" inside long tokens, so a narrow column wraps "entitlement.granted" at the dot instead of
    in the middle of a word; short words and numbers are left whole, and a part too long to fit any column is cut
    with an ellipsis (class `tg-long`) rather than broken."""
    pieces = _PIECES.split(str(html))
    return mark_safe(  # noqa: S308 (only text between tags changes, and only by inserting <wbr>)
        "".join(
            piece if piece.startswith(("<", "&")) else _TOKEN.sub(_breakable_token, piece) for piece in pieces
        )
    )
