"""Key material: generation, hashing and the visible prefix. The secret itself is never stored."""

import hashlib
from dataclasses import dataclass

from core.ids import random_token

PROJECT_KEY_PREFIX = "tg_sk_"
PLATFORM_KEY_PREFIX = "tg_plat_"
_SECRET_LENGTH = 40  # ~238 bits
_VISIBLE_RANDOM_CHARS = 6


@dataclass(frozen=True)
class KeyMaterial:
    secret: str
    prefix: str
    key_hash: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate(kind_prefix: str) -> KeyMaterial:
    secret = kind_prefix + random_token(_SECRET_LENGTH)
    return KeyMaterial(
        secret=secret,
        prefix=secret[: len(kind_prefix) + _VISIBLE_RANDOM_CHARS],
        key_hash=hash_secret(secret),
    )
