"""Serializer building blocks shared by every app's API."""

import re
from datetime import UTC, datetime
from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_HOST = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$"
)


def api_time(moment: datetime | None) -> str | None:
    """A time as every API answer and event writes it: ISO 8601 in UTC, ending in `Z` (as DRF's DateTimeField
    renders it), for the answers built by hand."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment is not None else None


class UnixTimeField(serializers.DateTimeField):
    """A time kept as Stripe wrote it (Unix seconds, e.g. an invoice line's period in `Invoice.lines`), answered
    as every other time of the API: ISO 8601 in UTC, ending in `Z`. Read-only."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, int | float):
            value = datetime.fromtimestamp(int(value), UTC)
        return super().to_representation(value)


class StrictSerializer(serializers.Serializer[Any]):
    """Rejects parameters it does not know, as Stripe does: a typo must not be silently ignored."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - {name for name, field in self.fields.items() if not field.read_only})
            if unknown:
                raise serializers.ValidationError(
                    {unknown[0]: ["Unknown parameter."]}, code="unknown_parameter"
                )
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "pattern": "^[A-Za-z]{3}$", "minLength": 3, "maxLength": 3})
class CurrencyField(serializers.CharField):
    """A three-letter ISO 4217 code, stored lowercase."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not _CURRENCY.match(value):
            self.fail("invalid")
        return value.lower()

    default_error_messages = {"invalid": "Must be a three-letter ISO currency code."}


# The web addresses a caller sends us (redirects, webhook endpoints): http(s), a host — a name with a top-level
# domain, `localhost` or an IPv4 address (a development setup's, like `make demo`'s 127.0.0.1) — an optional port,
# then printable ASCII. Narrower than Django's URLValidator (which the field applies too), so that every address
# the schema's pattern allows is one the server accepts; which hosts a project redirects to is its own setting.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
WEB_URL_PATTERN = (
    r"^https?://(localhost|" + _OCTET + r"(\." + _OCTET + r"){3}|"
    r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.[a-z]{2,63})"
    r"(:[1-9][0-9]{0,4})?([/?#][!-~]*)?$"
)


@extend_schema_field({"type": "string", "format": "uri", "pattern": WEB_URL_PATTERN, "maxLength": 2000})
class WebUrlField(serializers.URLField):
    """An http(s) address of at most 2000 characters, as the schema states it (`pattern`)."""

    default_error_messages = {
        "invalid": "Enter a valid URL: http(s)://, a host name with its domain, then printable ASCII."
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 2000)
        super().__init__(**kwargs)
        message = self.error_messages["invalid"]
        self.validators.append(RegexValidator(WEB_URL_PATTERN, flags=re.IGNORECASE, message=message))


HTTPS_URL_PATTERN = WEB_URL_PATTERN.replace("https?", "https", 1)


@extend_schema_field({"type": "string", "format": "uri", "pattern": HTTPS_URL_PATTERN, "maxLength": 2000})
class HttpsUrlField(serializers.URLField):
    """The schema promises an https address with a host name; the server takes any URL Django's validator does
    and leaves the rest to the service, which answers in its own codes (`invalid_url`, `https_required` — http
    is accepted for localhost in development — and the SSRF guard's refusals). Narrower in the schema, so that
    every address it allows is accepted."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 2000)
        super().__init__(**kwargs)


@extend_schema_field({"type": "string", "pattern": _HOST.pattern, "maxLength": 253})
class HostField(serializers.CharField):
    """A host name with an optional port, lowercased (used for allowed redirect hosts)."""

    default_error_messages = {
        "invalid": "Must be a host name such as app.example.com (optionally with :port)."
    }

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data).strip().lower()
        if not _HOST.match(value):
            self.fail("invalid")
        return value


# Stripe's own limits: at most 100 line items on a Checkout Session or invoice; metadata of at most 50 keys, keys of
# at most 40 characters without square brackets, values of at most 500.
MAX_LINE_ITEMS = 100
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": MAX_METADATA_KEYS,
        "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE_LENGTH},
        # OpenAPI 3.0 has no `propertyNames`: the rule on keys is stated in words.
        "description": f"At most {MAX_METADATA_KEYS} keys of 1 to {MAX_METADATA_KEY_LENGTH} characters without "
        f"square brackets, values of at most {MAX_METADATA_VALUE_LENGTH} characters (Stripe's limits).",
    }
)
class MetadataField(serializers.DictField):
    """Key-value metadata within Stripe's limits (it is passed on to Stripe), so a request Stripe would refuse is a
    clear 400 here, before anything is written."""

    default_error_messages = {
        "too_many": f"At most {MAX_METADATA_KEYS} keys.",
        "bad_key": f"Keys are 1 to {MAX_METADATA_KEY_LENGTH} characters, without square brackets.",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "child", serializers.CharField(allow_blank=True, max_length=MAX_METADATA_VALUE_LENGTH)
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            if len(data) > MAX_METADATA_KEYS:
                self.fail("too_many")
            if any(
                not isinstance(k, str) or not 0 < len(k) <= MAX_METADATA_KEY_LENGTH or "[" in k or "]" in k
                for k in data
            ):
                self.fail("bad_key")
        value: dict[str, Any] = super().to_internal_value(data)
        return value
