"""Base fixtures: two tenant projects with keys, a platform key, and an API client that runs on_commit work.

Every request made through `api` runs inside `django_capture_on_commit_callbacks(execute=True)`, so work queued
with `transaction.on_commit` (cache invalidation, Celery tasks) really runs, as it would after a real commit.
"""

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from celery import _state as celery_state
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client

from projects.authentication import local_cache
from stripe_emulator import Emulator
from stripe_emulator.sdk import EmulatorHTTPClient, make_client
from stripe_emulator.server import serve_in_thread
from stripe_gateway.client import install_http_client
from tests.catalog import Catalog, make_catalog
from tests.projects.factories import ApiKeyFactory, PlatformKeyFactory, ProjectFactory
from webhooks.services.receive import _endpoint_secrets as endpoint_secrets

_skipped_postgres: list[str] = []


def _on_postgres() -> bool:
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _on_postgres():
        return
    reason = "needs PostgreSQL (row locks, real concurrency); set DATABASE_URL=postgres://… to run it"
    for item in items:
        if item.get_closest_marker("postgres"):
            item.add_marker(pytest.mark.skip(reason=reason))
            _skipped_postgres.append(item.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped_postgres:
        terminalreporter.write_sep("-", "PostgreSQL-only tests")
        terminalreporter.write_line(
            f"{len(_skipped_postgres)} PostgreSQL-only tests skipped on SQLite (row locks and concurrency need "
            "PostgreSQL; CI runs them with DATABASE_URL set)."
        )


@pytest.fixture(autouse=True)
def stripe_emulator() -> Iterator[Emulator]:
    """A fresh in-process Stripe emulator behind the gateway for every test: nothing ever reaches the network.

    Webhooks are queued (manual mode) until a test flushes them with `stripe_emulator.flush_webhooks()`.
    """
    emulator = Emulator(webhook_mode="manual")
    install_http_client(EmulatorHTTPClient(emulator))
    try:
        yield emulator
    finally:
        install_http_client(None)
        emulator.close()


@pytest.fixture
def emulator_over_http(stripe_emulator: Emulator, settings: Any) -> Iterator[str]:
    """The test's emulator served over HTTP (its URL), for this process and any server process the test starts."""
    server = serve_in_thread(stripe_emulator)
    settings.STRIPE_API_BASE = server.url
    install_http_client(None)
    try:
        yield server.url
    finally:
        server.shutdown()


@pytest.fixture
def stripe_sdk(stripe_emulator: Emulator) -> Callable[[str], Any]:
    """`stripe_sdk(secret_key=platform key)` → an official `stripe.StripeClient` on the test's emulator,
    to check what Tollgate did at "Stripe"."""

    def make(secret_key: str = settings.STRIPE_SECRET_KEY) -> Any:
        return make_client(stripe_emulator, secret_key)

    return make


class WebhookBridge:
    """Delivers the emulator's webhooks to Tollgate's intake through Django's test client (no sockets)."""

    def __init__(self, emulator: Emulator, capture: Any) -> None:
        self.emulator = emulator
        self.capture = capture
        self.client = Client()
        self.responses: list[Any] = []
        emulator.webhooks.sender = self.send

    def send(self, url: str, body: bytes, headers: Any) -> int:
        path = urlsplit(url).path
        with self.capture(execute=True):
            response = self.client.post(
                path,
                data=body,
                content_type="application/json",
                headers={"Stripe-Signature": headers["Stripe-Signature"]},
            )
        self.responses.append(response)
        return int(response.status_code)

    def register(self, project: Any = None) -> None:
        """Registers Tollgate's endpoint at the emulator the way operators do (stripe_setup_webhooks)."""
        args = ["stripe_setup_webhooks", "--url", "http://testserver"]
        if project is not None:
            args += ["--project", project.slug]
        call_command(*args, stdout=io.StringIO())

    def deliver(self) -> list[Any]:
        """Sends every queued event now (and those the processing queues meanwhile)."""
        return list(self.emulator.flush_webhooks())


@pytest.fixture
def stripe_webhooks(
    db: None, stripe_emulator: Emulator, django_capture_on_commit_callbacks: Any
) -> WebhookBridge:
    bridge = WebhookBridge(stripe_emulator, django_capture_on_commit_callbacks)
    bridge.register()
    return bridge


@pytest.fixture(autouse=True)
def _celery_joins_allowed() -> None:
    """Each test starts with Celery's "a join would block" flag clear. It is one module global that an eager
    task sets and restores around itself (`denied_join_result`), so threads running eager tasks at once (the
    concurrency tests) can leave it set, and a later test's `AsyncResult.get()` then raises "Never call
    result.get() within a task!" (seen when `tests/entitlements` ran before the kill -9 tests of `tests/clients`)."""
    celery_state._set_task_join_will_block(False)


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    cache.clear()
    local_cache.clear()
    endpoint_secrets.clear()
    yield
    local_cache.clear()
    endpoint_secrets.clear()


@dataclass
class Tenant:
    project: Any
    api_key: Any

    @property
    def key(self) -> str:
        return str(self.api_key.secret)


@pytest.fixture
def tenant_a(db: None) -> Tenant:
    api_key = ApiKeyFactory(project=ProjectFactory(slug="alpha"))
    return Tenant(project=api_key.project, api_key=api_key)


@pytest.fixture
def tenant_b(db: None) -> Tenant:
    api_key = ApiKeyFactory(project=ProjectFactory(slug="bravo"))
    return Tenant(project=api_key.project, api_key=api_key)


@pytest.fixture
def platform_key(db: None) -> str:
    return str(PlatformKeyFactory().secret)


class ApiClient:
    """JSON requests with a bearer key; every request runs the on_commit callbacks it queued."""

    def __init__(self, capture: Any) -> None:
        self._client = Client()
        self._capture = capture

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        json_body: Any = None,
        data: str | bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Any:
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        body: str | bytes | None = data
        if json_body is not None:
            body = json.dumps(json_body)
        kwargs: dict[str, Any] = {"headers": all_headers}
        if method.upper() in {"GET", "HEAD"}:
            kwargs["data"] = json_body
            body = None
        elif body is not None:
            kwargs["data"] = body
            kwargs["content_type"] = content_type
        call = getattr(self._client, method.lower())
        with self._capture(execute=True):
            return call(path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json_body=body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("PATCH", path, json_body=body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("PUT", path, json_body=body, **kwargs)

    def delete(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("DELETE", path, json_body=body, **kwargs)


@pytest.fixture
def api(db: None, django_capture_on_commit_callbacks: Any) -> ApiClient:
    return ApiClient(django_capture_on_commit_callbacks)


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def catalog(tenant_a: Tenant, stripe_emulator: Emulator) -> Catalog:
    """Project A's small catalog (Stripe products and prices in the emulator, mirrored locally)."""
    return make_catalog(tenant_a.project)


@pytest.fixture
def catalog_b(tenant_b: Tenant, stripe_emulator: Emulator) -> Catalog:
    return make_catalog(tenant_b.project)
