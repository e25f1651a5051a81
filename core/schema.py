"""OpenAPI generation tweaks shared by every app."""

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    """Names nested `InputSerializer`/`OutputSerializer` classes after their view (`ProjectDetailApiInput`).

    Every view declares its own nested serializers (STYLE.md), so their bare class names collide.
    """

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        cls = serializer.__class__
        qualname = cls.__qualname__
        if "." in qualname:
            owner, _, name = qualname.rpartition(".")
            return owner.replace(".", "") + name.removesuffix("Serializer")
        default: str = super().get_serializer_name(serializer, direction)
        return default
