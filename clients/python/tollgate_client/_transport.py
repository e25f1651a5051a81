"""HTTP for the client: authentication, idempotency keys, retries with backoff, errors.

A mutating request (POST, PATCH, DELETE) carries one `Idempotency-Key` for the whole logical call: every retry
sends the same key, so Tollgate replays the first answer instead of acting twice. What is retried:

- no answer at all (connection refused or reset, timeout): the request may or may not have been applied, and
  the key makes finding out safe;
- 429, and 5xx (Tollgate does not store those answers under the key, so the retry really runs again);
- 409 `idempotency_key_in_use` (the first attempt is still running; its answer comes with the next try).

Waits grow exponentially with jitter (0.5 s, 1 s, 2 s … up to 8 s). A `Retry-After` from the server is waited
out in full, unless it asks for more than a minute: then the error is raised at once for the caller to decide.
"""

from __future__ import annotations

import json
import platform
import random
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from tollgate_client._version import __version__
from tollgate_client.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ConflictError,
    TollgateError,
    error_from_response,
    parse_retry_after,
)

MUTATING_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
API_PREFIX = "/api/v1"
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0


class Transport:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: float,
        max_retries: int,
        http_client: httpx.Client | None = None,
        default_headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required (a project key `tg_sk_…`, or a platform key).")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more.")
        self.api_key = api_key
        self.base_url = _api_root(base_url)
        self.timeout = timeout
        self.max_retries = max_retries
        self.default_headers = dict(default_headers or {})
        self._owns_client = http_client is None
        self._client = http_client if http_client is not None else httpx.Client(timeout=timeout)
        self._sleep = sleep

    def copy(self, *, timeout: float | None = None, max_retries: int | None = None) -> Transport:
        """The same connection pool with other settings (the copy never closes the pool)."""
        return Transport(
            api_key=self.api_key,
            base_url=self.base_url,
            timeout=self.timeout if timeout is None else timeout,
            max_retries=self.max_retries if max_retries is None else max_retries,
            http_client=self._client,
            default_headers=self.default_headers,
            sleep=self._sleep,
        )

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Sends the request (retrying as the module docstring says) and returns the decoded JSON answer,
        or None for an empty one (204)."""
        return _decode(self.send(method, path, params=params, body=body, idempotency_key=idempotency_key))

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """`request`, returning the successful response itself (for a caller that needs its exact bytes or its
        headers, such as a signature check)."""
        method = method.upper()
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Accept": "application/json",
            "User-Agent": f"tollgate-client-python/{__version__} (Python {platform.python_version()})",
            **self.default_headers,
        }
        if method in MUTATING_METHODS:
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        content: bytes | None = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        url = self.base_url + path
        query = _query(params)
        attempt = 0
        while True:
            try:
                response = self._client.request(
                    method, url, params=query, content=content, headers=headers, timeout=self.timeout
                )
            except httpx.TimeoutException as exc:
                error: TollgateError = APITimeoutError(f"Tollgate did not answer {method} {path} in time.")
                error.__cause__ = exc
            except httpx.TransportError as exc:
                error = APIConnectionError(f"Could not reach Tollgate for {method} {path}: {exc}.")
                error.__cause__ = exc
            else:
                if response.status_code < 400:
                    return response
                error = error_from_response(response)
            delay = self._retry_delay(error, attempt)
            if delay is None:
                raise error
            self._sleep(delay)
            attempt += 1

    def _retry_delay(self, error: TollgateError, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when the error is final."""
        if attempt >= self.max_retries or not _retryable(error):
            return None
        backoff = min(MAX_RETRY_DELAY, INITIAL_RETRY_DELAY * 2**attempt)
        delay = backoff / 2 + random.uniform(0, backoff / 2)  # noqa: S311  # jitter, not cryptography
        retry_after = parse_retry_after(error.headers.get("retry-after"))
        if retry_after is not None:
            if retry_after > MAX_RETRY_AFTER:
                return None
            delay = max(delay, retry_after)
        return delay


def _retryable(error: TollgateError) -> bool:
    if isinstance(error, APIConnectionError):
        return True
    if isinstance(error, ConflictError):
        return error.code == "idempotency_key_in_use"
    return error.status is not None and (error.status == 429 or error.status >= 500)


def _api_root(base_url: str) -> str:
    """`https://tollgate.example.com` (or the same with `/api/v1`) → `https://tollgate.example.com/api/v1`."""
    root = base_url.rstrip("/")
    if not root.startswith(("http://", "https://")):
        raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}.")
    return root if root.endswith(API_PREFIX) else root + API_PREFIX


def _query(params: Mapping[str, Any] | None) -> dict[str, str]:
    query: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        query[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return query


def _decode(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise APIError(
            f"Tollgate answered {response.status_code} with a body that is not JSON.",
            status=response.status_code,
            request_id=response.headers.get("x-request-id"),
        ) from exc
