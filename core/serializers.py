"""Serializer building blocks shared by every app's API."""

import re
from typing import Any

from rest_framework import serializers

_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_HOST = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$"
)


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
