"""In-process transport for the official ``stripe`` SDK: :class:`EmulatorHTTPClient` hands each request
straight to :meth:`Emulator.handle` (no sockets), and :func:`make_client` builds a ``StripeClient`` on it.

The only module of the emulator that imports ``stripe``. Re-entrant: a webhook sender running inside
``emulator.flush_webhooks()`` may call the emulator again through a client made here.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterable, Iterator, Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import stripe

from stripe_emulator.core.emulator import DEFAULT_BASE_URL, Emulator

# Where the in-process SDK client "sends" requests: no socket is opened, so any address does.
BASE_URL = DEFAULT_BASE_URL


class CaseInsensitiveHeaders(MutableMapping[str, str]):
    """The SDK reads response headers case-insensitively (``"stripe-should-retry" in headers``,
    ``headers["request-id"]``), as ``requests`` would give them."""

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for key, value in (headers or {}).items():
            self[key] = value

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __setitem__(self, key: str, value: str) -> None:
        self._items[key.lower()] = (key, value)

    def __delitem__(self, key: str) -> None:
        del self._items[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)


class EmulatorHTTPClient(stripe.HTTPClient):
    name = "stripe_emulator"

    def __init__(self, emulator: Emulator) -> None:
        super().__init__()
        self.emulator = emulator

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        parts = urlsplit(url)
        body = post_data.encode() if isinstance(post_data, str) else (post_data or b"")
        response = self.emulator.handle(
            method, parts.path, query=parts.query, body=body, headers=dict(headers or {})
        )
        return response.body.decode(), response.status, CaseInsensitiveHeaders(response.headers)

    def request_stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[Any, int, Mapping[str, str]]:
        body, status, response_headers = self.request(method, url, headers, post_data)
        return io.BytesIO(body.encode()), status, response_headers

    def close(self) -> None:
        """Nothing to release: there is no connection."""

    # The async client API works too; the emulator is in memory, so "async" just runs the call.

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        body, status, response_headers = self.request(method, url, headers, post_data)
        return body.encode(), status, response_headers

    async def request_stream_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[AsyncIterable[bytes], int, Mapping[str, str]]:
        body, status, response_headers = self.request(method, url, headers, post_data)

        async def chunks() -> AsyncIterable[bytes]:
            yield body.encode()

        return chunks(), status, response_headers

    async def close_async(self) -> None:
        """Nothing to release."""

    async def sleep_async(self, secs: float) -> None:
        await asyncio.sleep(secs)


def make_client(emulator: Emulator, api_key: str, **options: Any) -> stripe.StripeClient:
    """A ``StripeClient`` for ``api_key``'s account, talking to ``emulator`` in-process. ``options`` go to
    ``StripeClient`` (``max_network_retries``, ``stripe_version`` …)."""
    return stripe.StripeClient(
        api_key,
        http_client=EmulatorHTTPClient(emulator),
        base_addresses={"api": BASE_URL, "connect": BASE_URL, "files": BASE_URL, "meter_events": BASE_URL},
        **options,
    )
