"""``Idempotency-Key`` on POST, per account, as Stripe v1 does it: the first response for a key is saved
(once the endpoint began executing) and replayed for 24 hours of emulator time; the same key with other
parameters or another endpoint is a 400 ``idempotency_error``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from stripe_emulator.core.errors import IdempotencyError, InvalidRequestError

TTL_SECONDS = 24 * 60 * 60
MAX_KEY_LENGTH = 255


@dataclass
class SavedResponse:
    fingerprint: str
    status: int
    body: str
    request_id: str
    created: int


def fingerprint(method: str, path: str, params: dict[str, Any]) -> str:
    canonical = json.dumps([method.upper(), path, params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyCache:
    def __init__(self, saved: dict[str, SavedResponse] | None = None) -> None:
        self._saved: dict[str, SavedResponse] = saved or {}

    def lookup(self, key: str, print_: str, now: int) -> SavedResponse | None:
        if len(key) > MAX_KEY_LENGTH:
            raise InvalidRequestError(
                f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters long.", param="Idempotency-Key"
            )
        self._prune(now)
        saved = self._saved.get(key)
        if saved is None:
            return None
        if saved.fingerprint != print_:
            raise IdempotencyError(
                "Keys for idempotent requests can only be used with the same parameters they were first used "
                f"with. Try using a key other than '{key}' if you meant to execute a different request."
            )
        return saved

    def save(self, key: str, response: SavedResponse) -> None:
        self._saved[key] = response

    def _prune(self, now: int) -> None:
        # Cheap enough per request at emulator scale; keeps a long-running demo server bounded.
        expired = [k for k, v in self._saved.items() if v.created <= now - TTL_SECONDS]
        for k in expired:
            del self._saved[k]

    def __len__(self) -> int:
        return len(self._saved)

    def dump(self) -> dict[str, Any]:
        return {k: asdict(v) for k, v in self._saved.items()}

    @classmethod
    def load(cls, data: dict[str, Any]) -> IdempotencyCache:
        return cls({k: SavedResponse(**v) for k, v in data.items()})
