"""What every resource namespace shares: a transport, and typed helpers around it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from tollgate_client._objects import TollgateObject
from tollgate_client._transport import Transport
from tollgate_client.errors import APIError
from tollgate_client.pagination import Page, StreamPage

T = TypeVar("T", bound=TollgateObject)


def path(template: str, *ids: str) -> str:
    """`path("/payments/{}/refund", "pay_1")`: ids are quoted whole, so a customer id such as `a/b` or
    `ada@example.com` stays one path segment."""
    return template.format(*(quote(str(value), safe="") for value in ids))


def compact(**fields: Any) -> dict[str, Any]:
    """The request body: parameters left at None are not sent at all; datetimes are sent as ISO 8601."""
    return {key: _jsonable(value) for key, value in fields.items() if value is not None}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


class Resource:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def _get(self, cls: type[T], url: str, params: Mapping[str, Any] | None = None) -> T:
        return _build(cls, self._transport.request("GET", url, params=params))

    def _post(
        self,
        cls: type[T],
        url: str,
        body: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None,
    ) -> T:
        answer = self._transport.request("POST", url, body=body or {}, idempotency_key=idempotency_key)
        return _build(cls, answer)

    def _patch(self, cls: type[T], url: str, body: Mapping[str, Any], *, idempotency_key: str | None) -> T:
        answer = self._transport.request("PATCH", url, body=body, idempotency_key=idempotency_key)
        return _build(cls, answer)

    def _put(self, cls: type[T], url: str, body: Mapping[str, Any], *, idempotency_key: str | None) -> T:
        answer = self._transport.request("PUT", url, body=body, idempotency_key=idempotency_key)
        return _build(cls, answer)

    def _delete(
        self, url: str, body: Mapping[str, Any] | None = None, *, idempotency_key: str | None
    ) -> None:
        self._transport.request("DELETE", url, body=body or None, idempotency_key=idempotency_key)

    def _delete_returning(
        self, cls: type[T], url: str, body: Mapping[str, Any] | None = None, *, idempotency_key: str | None
    ) -> T:
        """A DELETE that answers the object as it ends (a grant or revocation, `deleted: true`)."""
        answer = self._transport.request("DELETE", url, body=body or None, idempotency_key=idempotency_key)
        return _build(cls, answer)

    def _list(self, cls: type[T], url: str, params: Mapping[str, Any]) -> Page[T]:
        answer = self._transport.request("GET", url, params=params)
        if not isinstance(answer, Mapping) or not isinstance(answer.get("data"), list):
            raise APIError(f"Expected a list object from GET {url}.")

        def fetch(starting_after: str) -> Page[T]:
            return self._list(cls, url, {**params, "starting_after": starting_after})

        return Page(
            data=[cls.from_dict(item) for item in answer["data"]],
            has_more=bool(answer.get("has_more")),
            raw=dict(answer),
            fetch=fetch,
        )

    def _stream(self, cls: type[T], url: str, params: Mapping[str, Any]) -> StreamPage[T]:
        """A page of a stream: oldest first, the next page after the cursor this one answers (`next`)."""
        answer = self._transport.request("GET", url, params=params)
        if not isinstance(answer, Mapping) or not isinstance(answer.get("data"), list):
            raise APIError(f"Expected a list object from GET {url}.")

        def fetch(after: str) -> StreamPage[T]:
            return self._stream(cls, url, {**params, "after": after})

        cursor = answer.get("next")
        return StreamPage(
            data=[cls.from_dict(item) for item in answer["data"]],
            has_more=bool(answer.get("has_more")),
            raw=dict(answer),
            fetch=fetch,
            next=str(cursor) if cursor is not None else None,
        )


def _build(cls: type[T], answer: Any) -> T:
    if not isinstance(answer, Mapping):
        raise APIError(f"Expected a JSON object for {cls.__name__}, got {type(answer).__name__}.")
    return cls.from_dict(answer)
