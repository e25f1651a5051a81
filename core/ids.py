"""Public object ids: a type prefix and an unguessable random part (`proj_3hK…`)."""

import secrets
import string
from typing import Any

from django.db import models

_ALPHABET = string.ascii_letters + string.digits
_RANDOM_LENGTH = 24  # ~143 bits of entropy


def new_id(prefix: str) -> str:
    return f"{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH))}"


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class PublicIdField(models.CharField):
    """Primary key holding a prefixed public id, generated on first save."""

    def __init__(self, *args: Any, prefix: str = "", **kwargs: Any) -> None:
        self.prefix = prefix
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault("primary_key", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        return name, path, args, kwargs

    def get_default(self) -> str:
        return new_id(self.prefix)

    def has_default(self) -> bool:
        return True
