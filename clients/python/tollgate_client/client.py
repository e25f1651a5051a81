"""`Tollgate`: the client, with one namespace per section of the API."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from tollgate_client._transport import Transport
from tollgate_client.resources.agent_keys import AgentKeys
from tollgate_client.resources.catalog import Features, Plans, Prices, Products
from tollgate_client.resources.checkout import Carts, Checkout
from tollgate_client.resources.costs import CostTables
from tollgate_client.resources.credit_notes import CreditNotes
from tollgate_client.resources.customers import Customers
from tollgate_client.resources.discounts import Coupons, PromotionCodes
from tollgate_client.resources.entitlements import Credits, Entitlements, Usage
from tollgate_client.resources.events import Events, WebhookEndpoints
from tollgate_client.resources.journal import Journal
from tollgate_client.resources.margins import Margins
from tollgate_client.resources.payments import Payments, Portal
from tollgate_client.resources.projects import CurrentProject, Metrics, Projects
from tollgate_client.resources.subscriptions import Invoices, Subscriptions

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 2


class Tollgate:
    """A client for one API key.

        tollgate = Tollgate(os.environ["TOLLGATE_API_KEY"], "https://tollgate.example.com")
        session = tollgate.checkout.subscription(customer="user-42", price="pro-monthly", ...)

    `base_url` is where Tollgate is served (with or without `/api/v1`). `timeout` is per attempt, in seconds;
    `max_retries` is how many times a failed attempt is retried (network errors, 429, 5xx, 409
    `idempotency_key_in_use`), always with the same `Idempotency-Key`. Pass `http_client` to bring your own
    `httpx.Client` (proxies, custom TLS); the client then leaves closing it to you.

    Thread-safe: share one instance per process (it holds a connection pool), and `close()` it at the end,
    or use it as a context manager.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._setup(
            Transport(
                api_key=api_key,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                http_client=http_client,
                default_headers=default_headers,
            )
        )

    def _setup(self, transport: Transport) -> None:
        self._transport = transport
        self.customers = Customers(transport)
        self.checkout = Checkout(transport)
        self.carts = Carts(transport)
        self.payments = Payments(transport)
        self.portal = Portal(transport)
        self.subscriptions = Subscriptions(transport)
        self.invoices = Invoices(transport)
        self.credit_notes = CreditNotes(transport)
        self.usage = Usage(transport)
        self.entitlements = Entitlements(transport)
        self.credits = Credits(transport)
        self.webhook_endpoints = WebhookEndpoints(transport)
        self.events = Events(transport)
        self.features = Features(transport)
        self.products = Products(transport)
        self.prices = Prices(transport)
        self.plans = Plans(transport)
        self.cost_tables = CostTables(transport)
        self.coupons = Coupons(transport)
        self.promotion_codes = PromotionCodes(transport)
        self.project = CurrentProject(transport)
        self.metrics = Metrics(transport)
        self.margins = Margins(transport)
        self.journal = Journal(transport)
        self.agent_keys = AgentKeys(transport)
        self.projects = Projects(transport)

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    @property
    def timeout(self) -> float:
        return self._transport.timeout

    @property
    def max_retries(self) -> int:
        return self._transport.max_retries

    def with_options(self, *, timeout: float | None = None, max_retries: int | None = None) -> Tollgate:
        """A client with other settings on the same connection pool, for one call or a few:
        `tollgate.with_options(max_retries=0).payments.create(...)`."""
        clone = object.__new__(Tollgate)
        clone._setup(self._transport.copy(timeout=timeout, max_retries=max_retries))
        return clone

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Any endpoint, with the client's authentication, idempotency, retries and errors, for what the
        namespaces do not cover yet: `tollgate.request("GET", "/payments", params={"limit": 5})`. `path` is
        relative to `/api/v1`; the decoded JSON is returned as is (None for 204)."""
        return self._transport.request(
            method, path, params=params, body=body, idempotency_key=idempotency_key
        )

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Tollgate:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Tollgate {self.base_url} key={self._transport.api_key[:12]}…>"
