"""Routing: a table of :class:`Route` (method + path template → handler), and the :class:`Request` /
:class:`Response` a handler sees.

Templates use ``{name}`` placeholders matching one path segment: ``Route("POST", "/v1/customers/{id}",
customer_update)``. Handlers live in each service's ``responses.py`` and return a :class:`Response`, usually
via :meth:`Request.respond` / :meth:`Request.respond_list`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from stripe_emulator.core.errors import APIError, UnrecognizedURL
from stripe_emulator.core.params import Params
from stripe_emulator.core.render import render, render_list
from stripe_emulator.core.store import StripeObject

if TYPE_CHECKING:
    from stripe_emulator.core.account import Account, BaseBackend
    from stripe_emulator.core.emulator import Emulator

B = TypeVar("B", bound="BaseBackend")

Handler = Callable[["Request"], "Response"]


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(payload, separators=(",", ":")).encode(), {})

    def data(self) -> Any:
        return json.loads(self.body)


@dataclass
class Request:
    emulator: Emulator
    method: str
    path: str
    path_params: dict[str, str]
    params: Params
    headers: Mapping[str, str]  # lower-cased names
    request_id: str
    account_or_none: Account | None

    @property
    def account(self) -> Account:
        if self.account_or_none is None:  # only control routes run without an account
            raise APIError("this route has no account")
        return self.account_or_none

    def backend(self, cls: type[B]) -> B:
        return self.account.backend(cls)

    def respond(self, obj: StripeObject, status: int = 200) -> Response:
        """The object as a retrieve renders it, with this request's ``expand[]``."""
        return Response.json(render(self.account, obj, self.params.expand()), status)

    def respond_list(self, objects: Sequence[StripeObject], *, url: str, object_type: str) -> Response:
        return Response.json(
            render_list(self.account, objects, self.params, url=url, object_type=object_type)
        )


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    auth: bool = True  # ``False`` only for ``/_emulator`` test controls
    # Whether a publishable key (``pk_test_…``) may call it, as Stripe allows for what Stripe.js does in the
    # browser: ``"any"`` (creating a PaymentMethod), or the type of the path's object whose ``client_secret``
    # the request must carry (retrieving or confirming a PaymentIntent / SetupIntent). ``None``: secret keys only.
    publishable: str | None = None

    def compile(self) -> re.Pattern[str]:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        return re.compile(f"^{pattern}$")


class Router:
    def __init__(self, routes: Sequence[Route] = ()) -> None:
        self._routes: list[tuple[Route, re.Pattern[str]]] = []
        for route in routes:
            self.add(route)

    def add(self, route: Route) -> None:
        for existing, _ in self._routes:
            if (existing.method, existing.template) == (route.method, route.template):
                raise ValueError(f"duplicate route {route.method} {route.template}")
        self._routes.append((route, route.compile()))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        for route, pattern in self._routes:
            if route.method != method:
                continue
            found = pattern.match(path)
            if found:
                return route, found.groupdict()
        raise UnrecognizedURL(method, path)

    def __iter__(self) -> Any:
        return (route for route, _ in self._routes)
