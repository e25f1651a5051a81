"""Fixtures for the client's tests: a live Tollgate server on a free port (pytest-django's `live_server`, on
the test database, with the in-process Stripe emulator behind the gateway), clients for the two tenants, and a
misbehaving proxy in front of the server.

Tests that use the live server need `@pytest.mark.django_db(transaction=True)`: the server's thread reads
committed data only.
"""

from collections.abc import Iterator

import pytest
from tollgate_client import Tollgate

from tests.clients.proxy import FlakyProxy
from tests.events.receiver import Receiver

OK = "https://app.example.com/ok"
CANCEL = "https://app.example.com/cancel"


def complete_checkout(stripe_emulator, session_id: str, card: str = "4242424242424242"):
    """The customer pays on the emulator's hosted checkout page."""
    return stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{session_id}/complete",
        query="",
        body=f"card={card}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


@pytest.fixture
def tollgate(live_server, tenant_a) -> Iterator[Tollgate]:
    """Tenant A's client on the live server."""
    with Tollgate(tenant_a.key, live_server.url, timeout=10) as client:
        yield client


@pytest.fixture
def tollgate_b(live_server, tenant_b) -> Iterator[Tollgate]:
    with Tollgate(tenant_b.key, live_server.url, timeout=10) as client:
        yield client


@pytest.fixture
def proxy(live_server) -> Iterator[FlakyProxy]:
    flaky = FlakyProxy(upstream=live_server.url).start()
    yield flaky
    flaky.stop()


@pytest.fixture
def via_proxy(proxy, tenant_a) -> Iterator[Tollgate]:
    """Tenant A's client talking to the server through the proxy."""
    with Tollgate(tenant_a.key, proxy.url, timeout=10, max_retries=2) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The tenant's own webhook receiver, a real HTTP server on a loopback port."""
    started = Receiver().start()
    yield started
    started.stop()


@pytest.fixture
def plans(tollgate: Tollgate, live_server, tenant_a, platform_key) -> None:
    """One feature of each type; the project's default product (the Free tier) gives some of them."""
    tollgate.features.create(key="exports", name="Exports", type="metered", unit="export")
    tollgate.features.create(key="seats", name="Seats", type="allocation")
    tollgate.features.create(key="ai_credits", name="AI credits", type="credits")
    tollgate.features.create(key="sso", name="SSO", type="boolean")
    tollgate.features.create(key="tier", name="Tier", type="static")
    tollgate.products.create(
        key="free", name="Free", features={"exports": 3, "seats": 2, "sso": True, "tier": {"name": "free"}}
    )
    with Tollgate(platform_key, live_server.url, timeout=10) as platform:
        platform.projects.update(tenant_a.project.pk, default_product="free")


@pytest.fixture
def per_seat(tollgate: Tollgate, plans) -> None:
    """`plans`, and a metered feature `summaries` the Free plan gives 10 of a month for the account and 4 for each
    of its 2 `seats` (`per_entity`): a customer's seats are entities with their own limit."""
    tollgate.features.create(key="summaries", name="Summaries", type="metered", unit="summary")
    free = tollgate.products.retrieve("free")
    per_entity = {"limit": 10, "per_entity": {"feature": "seats", "limit": 4}}
    tollgate.products.update("free", features={**free.features, "summaries": per_entity})
