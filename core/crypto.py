"""Secrets at rest: MultiFernet encryption keyed by FIELD_ENCRYPTION_KEYS (first key encrypts, all decrypt)."""

from functools import cache
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: secrets cannot be stored.")
    return MultiFernet([Fernet(key) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured("A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS.") from exc


def rotate(token: str) -> str:
    """Re-encrypts a token under the current primary key (after a key rotation)."""
    return fernet().rotate(token.encode()).decode()


if TYPE_CHECKING:
    # django-stubs makes fields generic in the values they take and give; Django's cannot be subscripted.
    _TextField = models.TextField[str, str]
else:
    _TextField = models.TextField


class EncryptedTextField(_TextField):
    """A text column holding a Fernet token; Python code only ever sees the plaintext.

    Empty values are stored as empty strings, unencrypted, so "no secret" stays queryable.
    """

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(str(value))


FERNET_TOKEN_START = b"gAAAAA"  # a Fernet token's version byte and timestamp, base64: no JSON body starts so


class EncryptedBinaryField(models.BinaryField):
    """Bytes kept as a Fernet token; Python code only ever sees the plaintext. A value written before the column
    was encrypted (anything not shaped like a token: a JSON body) is read as it is."""

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is not None and not prepared:
            value = fernet().encrypt(bytes(value))
        return super().get_db_prep_value(value, connection, prepared)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> bytes | None:
        if value is None:
            return None
        raw = bytes(value)
        if not raw.startswith(FERNET_TOKEN_START):
            return raw
        try:
            return fernet().decrypt(raw)
        except InvalidToken as exc:
            raise ImproperlyConfigured(
                "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS."
            ) from exc
