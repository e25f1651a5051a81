"""Per-key rate limiting for the API (429 `rate_limit_error` with Retry-After)."""

import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.ratelimit import hit, hit_and_read, hits_and_read
from core.throttled import throttled_count

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
            project_bucket = ProjectUsageRateThrottle.bucket_of(request, view)
            if project_bucket is None:
                counted = request_count(counter, keys)
            else:  # the project's usage counter too, in the same round trip
                counted, project_counted = _key_and_project_count(counter, project_bucket, keys)
                request._request.project_usage_counted = project_counted  # type: ignore[attr-defined]
        count, reset_in, values = counted
        if values is not None:
            view.read_ahead = values
        if count > limit:
            self._wait = reset_in
            return False
        return True

    def wait(self) -> float | None:
        return self._wait


def _key_and_project_count(
    counter: str, project_bucket: str, keys: Sequence[str]
) -> tuple[tuple[int, int, dict[str, Any] | None], tuple[int, int] | None]:
    """`request_count` for the key's counter and one hit on the project's usage counter, in one round trip; fails
    open as `request_count` does (the project's count None: `ProjectUsageRateThrottle` then lets it pass)."""
    try:
        counts, values = hits_and_read(
            [(counter, WINDOW_SECONDS), (project_bucket, ProjectUsageRateThrottle.WINDOW_SECONDS)], keys
        )
    except Exception as exc:
        logger.warning("Rate limiter unavailable (%s); request allowed.", exc.__class__.__name__)
        return (0, WINDOW_SECONDS, None), None
    return (*counts[0], values), counts[1]


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

    @classmethod
    def bucket_of(cls, request: Request, view: Any) -> str | None:
        """The project's usage counter this request counts on, or None (not limited by this throttle)."""
        if (
            cls not in getattr(view, "throttle_classes", ())
            or not settings.PROJECT_USAGE_RATE_LIMIT_PER_SECOND
        ):
            return None
        project = getattr(request.auth, "project", None)
        if project is None or request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        return f"project-usage:{project.pk}"

    def allow_request(self, request: Request, view: Any) -> bool:
        limit = settings.PROJECT_USAGE_RATE_LIMIT_PER_SECOND
        bucket = self.bucket_of(request, view)
        if bucket is None:
            return True
        tenant = request.auth.project.pk  # type: ignore[union-attr]  # bucket_of: a project's key
        # Counted with the key's counter in its round trip (None: the limiter was unreachable, fail open as it
        # does), unless the key's throttle did not count this request.
        if hasattr(request._request, "project_usage_counted"):
            counted: tuple[int, int] | None = request._request.project_usage_counted
        else:
            try:
                counted = hit(bucket, self.WINDOW_SECONDS)
            except Exception as exc:
                logger.warning("Rate limiter unavailable (%s); request allowed.", exc.__class__.__name__)
                counted = None
        if counted is None:
            return True
        count, reset_in = counted
        if count > limit:
            self._wait = reset_in
            throttled_count(kind="usage", tenant=tenant)
            return False
        return True

    def wait(self) -> float | None:
        return self._wait
