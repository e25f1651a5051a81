"""Local checks while the server's Redis is frozen (SIGSTOP: connections stay open, nothing answers), against a
real gunicorn on the test database and a private redis-server: a held snapshot answers from memory until the
client has not heard the feed for `stale_after`, then never again; a revocation made during the freeze is never
answered as before (fail-closed while Tollgate is too slow, the server's own answer otherwise); after the thaw the
revocation reaches every answer, although the feed never recorded it (the cache epoch it moved does)."""

import os
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from tollgate_client import Tollgate
from tollgate_client.local import LocalEntitlements

from stripe_emulator import Emulator
from stripe_emulator.server import serve_in_thread
from tests.core.test_frozen_redis import _private_redis
from tests.e2e import exactly_once as eo

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def web(tenant_a, platform_key) -> Iterator[tuple[eo.WebProcess, object]]:
    redis_server, redis_url = _private_redis()
    stripe = serve_in_thread(Emulator(webhook_mode="manual"))
    settings = connection.settings_dict
    database = (
        f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/"
        f"{settings['NAME']}"
    )
    process = eo.WebProcess(
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database,
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": "memory://",
            "STRIPE_API_BASE": stripe.url,
        },
        port=eo.bind_port(set()),
        log=Path(tempfile.mkdtemp(prefix="local-frozen-")) / "web.log",
    )
    process.start()
    try:
        with Tollgate(tenant_a.key, process.url, timeout=30) as client:
            client.features.create(key="exports", name="Exports", type="metered")
            client.products.create(key="free", name="Free", features={"exports": 3})
            with Tollgate(platform_key, process.url, timeout=30) as platform:
                platform.projects.update(tenant_a.project.pk, default_product="free")
        yield process, redis_server
    finally:
        os.kill(redis_server.pid, signal.SIGCONT)
        process.stop()
        redis_server.terminate()
        redis_server.wait(10)
        stripe.shutdown()


def test_a_revocation_during_a_redis_freeze_is_never_answered_as_before(web, tenant_a):
    process, redis_server = web
    with (
        Tollgate(tenant_a.key, process.url, timeout=30) as client,
        LocalEntitlements(client, poll_interval=0.05, stale_after=1.0, timeout=1.0) as local,
    ):
        assert local.check(customer="user-f", feature="exports").to_dict()["limit"] == 3

        os.kill(redis_server.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        held = local.check(customer="user-f", feature="exports")
        assert time.monotonic() - frozen_at < 0.5  # from memory: no request met the frozen Redis
        assert (held.allowed, held.limit) == (True, 3)

        client.entitlements.revocations.create(customer="user-f", feature="exports", reason="chargeback")
        assert (
            time.monotonic() - frozen_at > 1.0
        )  # the server met the freeze; the client has not heard the feed
        during = local.check(customer="user-f", feature="exports")
        if during.raw.get("unavailable"):
            assert (during.allowed, during.limit) == (False, None)  # fail-closed: Tollgate too slow to answer
        else:
            assert (during.allowed, during.limit) == (False, 0)  # the server's answer from the database

        os.kill(redis_server.pid, signal.SIGCONT)
        deadline = time.monotonic() + 15
        while True:
            answer = local.check(customer="user-f", feature="exports")
            assert not (answer.allowed and answer.limit == 3), "answered the state from before the revocation"
            if not answer.raw.get("unavailable") and answer.limit == 0:
                break
            assert time.monotonic() < deadline, "the revocation never reached the local answers"
            time.sleep(0.05)
        for _ in range(20):  # stays: the snapshot Redis held from before the freeze is not served again
            time.sleep(0.05)
            again = local.check(customer="user-f", feature="exports")
            assert (again.allowed, again.limit) == (False, 0)
        assert client.entitlements.check(customer="user-f", feature="exports").limit == 0


def test_uses_naming_a_seat_during_a_redis_freeze_stop_at_its_limit_and_reach_the_local_answers(
    web, tenant_a
):
    """A seat with 4 of its own (10 for the account): with the server's Redis frozen, six consumes naming it are
    allowed exactly 4 — the database holds the limit, not the cache —; after the thaw the local answers naming it
    say it is used up, and those naming the other seat that it is not."""
    process, redis_server = web
    with Tollgate(tenant_a.key, process.url, timeout=30) as client:
        client.features.create(key="seats", name="Seats", type="allocation")
        client.features.create(key="summaries", name="Summaries", type="metered")
        per_seat = {"limit": 10, "per_entity": {"feature": "seats", "limit": 4}}
        client.products.update("free", features={"exports": 3, "seats": 2, "summaries": per_seat})
        for seat in ("ana", "bo"):
            client.entitlements.entities.add(customer="user-s", feature="seats", entity=seat)
        with LocalEntitlements(client, poll_interval=0.05, stale_after=1.0, timeout=1.0) as local:
            before = local.check(customer="user-s", feature="summaries", entity="ana")
            assert (before.allowed, before.entity.used, before.entity.remaining) == (True, 0, 4)

            os.kill(redis_server.pid, signal.SIGSTOP)
            answers = [
                client.entitlements.consume(id=f"s{n}", customer="user-s", feature="summaries", entity="ana")
                for n in range(6)
            ]
            assert [answer.allowed for answer in answers] == [True] * 4 + [False] * 2
            assert [answer.binding for answer in answers[4:]] == ["entity", "entity"]
            os.kill(redis_server.pid, signal.SIGCONT)

            deadline = time.monotonic() + 15
            while True:
                seat = local.check(customer="user-s", feature="summaries", entity="ana")
                if not seat.raw.get("unavailable") and seat.entity is not None and seat.entity.used == 4:
                    break
                assert time.monotonic() < deadline, "the seat's use never reached the local answers"
                time.sleep(0.05)
            assert (seat.allowed, seat.binding, seat.used, seat.remaining) == (False, "entity", 4, 6)
            other = local.check(customer="user-s", feature="summaries", quantity=4, entity="bo")
            assert (other.allowed, other.entity.used, other.entity.remaining) == (True, 0, 4)
        server = client.entitlements.check(customer="user-s", feature="summaries", entity="ana")
        assert (server.allowed, server.entity.used) == (False, 4)
