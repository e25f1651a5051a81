"""Per-key rate limiting for the API (429 `rate_limit_error` with Retry-After)."""

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.ratelimit import hit

WINDOW_SECONDS = 60


class ApiKeyRateThrottle(BaseThrottle):
    """API_RATE_LIMIT_PER_MINUTE requests per key per minute, counted in the shared cache."""

    def __init__(self) -> None:
        self._wait: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        limit = settings.API_RATE_LIMIT_PER_MINUTE
        principal: Any = request.auth
        if not limit or principal is None:
            return True
        count, reset_in = hit(f"key:{principal.key_id}", WINDOW_SECONDS)
        if count > limit:
            self._wait = reset_in
            return False
        return True

    def wait(self) -> float | None:
        return self._wait
