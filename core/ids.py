"""Public object ids: a type prefix and an unguessable random part (`proj_3hK…`)."""

import hashlib
import os
import string
from typing import TYPE_CHECKING, Any

from django.db import models

_ALPHABET = string.ascii_letters + string.digits
_RANDOM_LENGTH = 24  # ~143 bits of entropy
_UNBIASED = 248  # 4 × 62: bytes below it map onto the alphabet evenly


# Byte b < 248 stands for the alphabet's character b % 62; the bytes above are dropped (`bytes.translate`, in C).
_TABLE = bytes(ord(_ALPHABET[b % 62]) for b in range(_UNBIASED)) + bytes(256 - _UNBIASED)
_DROPPED = bytes(range(_UNBIASED, 256))


def _random_characters(count: int) -> str:
    """`count` characters drawn uniformly from the alphabet, from the OS's random source in one read (drawing
    them one by one with `secrets.choice` costs more than the rest of a hot request): each random byte below 248
    maps onto the alphabet evenly, the others are dropped, by one `bytes.translate` call."""
    chosen = b""
    while len(chosen) < count:
        need = count - len(chosen)
        chosen += os.urandom(need + need // 16 + 8).translate(_TABLE, _DROPPED)
    return chosen[:count].decode("ascii")


def new_id(prefix: str) -> str:
    return f"{prefix}_{_random_characters(_RANDOM_LENGTH)}"


def derived_id(prefix: str, secret: str) -> str:
    """An id of `new_id`'s shape derived from `secret` (itself unguessable): the same secret, the same id."""
    number = int.from_bytes(hashlib.sha256(f"{prefix}\0{secret}".encode()).digest(), "big")
    characters = []
    for _ in range(_RANDOM_LENGTH):
        number, index = divmod(number, 62)
        characters.append(_ALPHABET[index])
    return f"{prefix}_{''.join(characters)}"


def new_ids(prefix: str, count: int) -> list[str]:
    """`count` ids at once (a usage batch of 1,000 events)."""
    pool = _random_characters(_RANDOM_LENGTH * count)
    return [f"{prefix}_{pool[i : i + _RANDOM_LENGTH]}" for i in range(0, len(pool), _RANDOM_LENGTH)]


def random_token(length: int) -> str:
    return _random_characters(length)


if TYPE_CHECKING:
    # django-stubs makes fields generic in the values they take and give; Django's cannot be subscripted.
    _CharField = models.CharField[str, str]
else:
    _CharField = models.CharField


class PublicIdField(_CharField):
    """Primary key holding a prefixed public id, generated on first save."""

    def __init__(self, *args: Any, prefix: str = "", **kwargs: Any) -> None:
        self.prefix = prefix
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault("primary_key", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault(
            "verbose_name", "ID"
        )  # as Django labels its own primary keys ("Id" reads like code)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        if kwargs.get("verbose_name") == "ID":
            del kwargs["verbose_name"]  # the field's own default: nothing for a migration to record
        return name, path, args, kwargs

    def get_default(self) -> str:
        return new_id(self.prefix)

    def has_default(self) -> bool:
        return True
