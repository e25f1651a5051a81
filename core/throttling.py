"""Per-key rate limiting for the API (429 `rate_limit_error` with Retry-After)."""

import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.fairness import throttled_count
from core.ratelimit import hit, hit_and_read

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60


def request_count(counter: str, keys: Sequence[str]) -> tuple[int, int, dict[str, Any] | None]:
    """One more request on `counter` this window, and the values of the cache `keys` read in the same round trip:
    (requests so far, seconds until the window ends, values). The limiter fails open: when the cache cannot be
    reached the request counts as the first (and the values are None), with a warning — a cache outage must not
    take the API down. A caller that counted a request already (`entitlements.apis.check_fast`) leaves the result
    on it as `request.rate_counted`, so that the throttle does not count it again."""
    try:
        return hit_and_read(counter, WINDOW_SECONDS, keys)
    except Exception as exc:
        logger.warning("Rate limiter unavailable (%s); request allowed.", exc.__class__.__name__)
        return 0, WINDOW_SECONDS, None


class ApiKeyRateThrottle(BaseThrottle):
    """API_RATE_LIMIT_PER_MINUTE requests per key per minute, counted in the shared cache.

    A view that names the cache keys it reads first (`BaseApi.read_ahead_keys`) gets their values in the
    limiter's round trip, as `view.read_ahead`."""

    def __init__(self) -> None:
        self._wait: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        limit = settings.API_RATE_LIMIT_PER_MINUTE
        principal: Any = request.auth
        if not limit or principal is None:
            return True
        return self._count(f"key:{principal.key_id}", limit, request, view)

    def _count(self, counter: str, limit: int, request: Request, view: Any) -> bool:
        """One more request on `counter` this window, and the view's read-ahead values in the same round trip."""
        counted = getattr(request._request, "rate_counted", None)
        if counted is None:
            read_ahead_keys = getattr(view, "read_ahead_keys", None)
            keys = read_ahead_keys(request) if read_ahead_keys is not None else ()
            counted = request_count(counter, keys)
        count, reset_in, values = counted
        if values is not None:
            view.read_ahead = values
        if count > limit:
            self._wait = reset_in
            return False
        return True

    def wait(self) -> float | None:
        return self._wait


class PublicRateThrottle(ApiKeyRateThrottle):
    """For endpoints read without a key: PUBLIC_RATE_LIMIT_PER_MINUTE requests per client address per minute.

    The address is the connection's (REMOTE_ADDR): a forwarded header is the client's to invent. Behind a proxy
    that rewrites REMOTE_ADDR, the limit is the proxy's."""

    def allow_request(self, request: Request, view: Any) -> bool:
        limit = settings.PUBLIC_RATE_LIMIT_PER_MINUTE
        address = request.META.get("REMOTE_ADDR") or "unknown"
        if not limit:
            return True
        return self._count(f"public:{address}", limit, request, view)


class ProjectUsageRateThrottle(BaseThrottle):
    """Per-tenant fairness for usage intake (`POST /usage`, `/usage/batch`, `/entitlements/consume`): at most
    PROJECT_USAGE_RATE_LIMIT_PER_SECOND such requests per project per second, whatever the number of its keys,
    besides each key's own limit. A project bursting past it gets 429 `rate_limit_error` with `Retry-After`
    (the seconds to the window's end) and another project's requests keep their latency. Each refusal is counted
    per project (`tollgate_throttled_requests` in `/metrics`). Only unsafe methods count: reads have the key's
    limit alone."""

    WINDOW_SECONDS = 1

    def __init__(self) -> None:
        self._wait: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        limit = settings.PROJECT_USAGE_RATE_LIMIT_PER_SECOND
        project = getattr(request.auth, "project", None)
        if not limit or project is None or request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        try:
            count, reset_in = hit(f"project-usage:{project.pk}", self.WINDOW_SECONDS)
        except Exception as exc:
            logger.warning("Rate limiter unavailable (%s); request allowed.", exc.__class__.__name__)
            return True
        if count > limit:
            self._wait = reset_in
            throttled_count(kind="usage", tenant=project.pk)
            return False
        return True

    def wait(self) -> float | None:
        return self._wait
