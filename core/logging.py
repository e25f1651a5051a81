"""Structured JSON logging with request context, and a filter that redacts secrets and card numbers.

The redaction runs on every record that reaches a handler, whatever logger emitted it: a secret passed as a
log argument or in `extra` is masked before it is formatted.
"""

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from core import context

_SECRET_PATTERNS = [
    # Stripe secret and restricted keys, webhook secrets, client secrets.
    re.compile(r"\b(sk|rk)_(test|live)_[A-Za-z0-9]{6,}"),
    re.compile(r"\bwhsec_[A-Za-z0-9+/=]{6,}"),
    re.compile(r"\b(pi|seti)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+"),
    # Tollgate project and platform keys.
    re.compile(r"\btg_(sk|pk|plat)_[A-Za-z0-9]{6,}"),
]
# Bearer credentials in anything that looks like a header dump: keep the scheme, drop the credential.
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
# 13 to 19 digits, optionally grouped by spaces or dashes: what a card number looks like.
# Not part of a longer number or identifier: no letter, digit, decimal point or dash before it; no letter, digit,
# decimal fraction or dash-joined part after it. A UUID (a task id) whose first groups happen to be digits is an
# id, not a card.
_CARD_CANDIDATE = re.compile(r"(?<![A-Za-z\d.-])(?:\d[ -]?){12,18}\d(?![A-Za-z\d]|\.\d|-[A-Za-z\d])")
_SENSITIVE_KEYS = re.compile(r"(?i)(secret|password|api_key|apikey|authorization|token|card_number|cvc)")
# The value of a query parameter whose name says it carries a credential, in any URL (a request's repr, a
# redirect target): `?api_key=…`, `&client_secret=…`, `?token=…`. Keeps the name, drops the value.
_QUERY_SECRET = re.compile(
    r"(?i)([?&;][^=&\s'\"#]*(?:secret|passw|token|api_?key|\bkey|authorization|signature)[^=&\s'\"#]*=)[^&;\s'\"#]+"
)

REDACTED = "[REDACTED]"
# What any of the patterns above needs somewhere in the text (a superset): a text without it is returned as it is,
# after one search instead of seven substitutions (every API request's log line is redacted).
_MAYBE_SECRET = re.compile(r"(?i)bearer|[sr]k_|whsec_|_secret_|tg_|=|\d[\d -]{11,}")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if 13 <= len(digits) <= 19 and _luhn_ok(digits):
        return f"[CARD ****{digits[-4:]}]"
    return match.group(0)


def redact(text: str) -> str:
    return redact_all(text) if _MAYBE_SECRET.search(text) else text


def redact_all(text: str) -> str:
    """Every substitution, whatever the text (`redact` skips a text that cannot hold what they replace)."""
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _QUERY_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return _CARD_CANDIDATE.sub(_mask_card, text)


def redact_value(value: Any, key: str = "") -> Any:
    if key and _SENSITIVE_KEYS.search(key) and value not in (None, "", False):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else is logged by its str(): Django's `request` (its repr holds the full URL), exceptions, ids.
    return redact(str(value))


_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "project",
    "key_prefix",
}


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_ATTRS:
                setattr(record, name, redact_value(value, name))
        return True


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = context.request_id.get()
        record.project = context.project_slug.get()
        record.key_prefix = context.key_prefix.get()
        if (stripe_event := context.stripe_event.get()) != "-":
            record.stripe_event = stripe_event  # a worker's lines while it applies a Stripe event
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "project": getattr(record, "project", "-"),
            "key_prefix": getattr(record, "key_prefix", "-"),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD_ATTRS and name not in payload:
                payload[name] = value
        if record.exc_info:
            payload["exception"] = record.exc_text or self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exception"] = record.exc_text
        return json.dumps(payload, default=str)
