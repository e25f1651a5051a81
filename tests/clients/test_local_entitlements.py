"""`tollgate_client.local.LocalEntitlements` on the live server, in this process: checks answered from a signed
snapshot with no request, a change (grant, revocation, project change) dropping it through the feed, the feed's
own answers, fail-closed and fail-open when Tollgate cannot be reached, a revoked key, a suspended project, a forged
snapshot, a check naming an entity. Several processes at once are in `test_local_entitlements_processes.py`, a frozen Redis in
`test_local_entitlements_frozen.py`."""

import math
import time

import httpx
import pytest
import time_machine
from tollgate_client import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    Tollgate,
)
from tollgate_client.local import LocalEntitlements, SnapshotSignatureError, snapshot_signature

from core.actors import Actor
from entitlements.apis.local import snapshot_signature as server_signature
from projects.models import Project
from projects.services.keys import api_key_revoke
from projects.services.projects import project_update

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {"poll_interval": 0.05, "stale_after": 2.0}


class Counting(httpx.Client):
    """An httpx client that counts the requests it sends, by path."""

    def __init__(self) -> None:
        super().__init__(timeout=10)
        self.paths: list[str] = []

    def send(self, request: httpx.Request, **kwargs):  # type: ignore[no-untyped-def, override]
        self.paths.append(request.url.path)
        return super().send(request, **kwargs)


@pytest.fixture
def counted(live_server, tenant_a):
    http = Counting()
    with Tollgate(tenant_a.key, live_server.url, http_client=http) as client:
        yield client, http
    http.close()


def _until(condition, seconds: float = 5.0) -> float:
    """Seconds until `condition()` held (fails after `seconds`)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "not within the bound"
        time.sleep(0.01)
    return time.monotonic() - started


def _raises(call, error: type[Exception]) -> bool:
    try:
        call()
    except error:
        return True
    return False


def test_checks_answer_from_memory_after_one_snapshot(counted, plans, tollgate):
    client, http = counted
    tollgate.entitlements.consume(id="e1", customer="user-1", feature="exports")
    with LocalEntitlements(client, **FAST) as local:
        first = local.check(customer="user-1", feature="exports")
        snapshots = http.paths.count("/api/v1/entitlements/snapshot")
        for _ in range(1000):
            answer = local.check(customer="user-1", feature="exports", quantity=2)
        server = tollgate.entitlements.check(customer="user-1", feature="exports", quantity=2)
        assert snapshots == 1
        assert http.paths.count("/api/v1/entitlements/snapshot") == 1
        assert "/api/v1/entitlements/check" not in http.paths
        assert first.to_dict() == {
            **tollgate.entitlements.check(customer="user-1", feature="exports").to_dict()
        }
        assert answer.to_dict() == server.to_dict()
        assert (answer.allowed, answer.used, answer.remaining, answer.limit) == (True, 1, 2, 3)
        assert local.check(customer="user-1", feature="exports", quantity=3).allowed is False
        for feature in ("seats", "sso", "tier", "ai_credits"):
            assert (
                local.check(customer="user-1", feature=feature).to_dict()
                == tollgate.entitlements.check(customer="user-1", feature=feature).to_dict()
            )


def test_a_grant_and_a_revocation_reach_the_answers_through_the_feed(counted, plans, tollgate):
    client, _ = counted
    with LocalEntitlements(client, **FAST) as local:
        assert local.check(customer="user-2", feature="exports").limit == 3
        tollgate.entitlements.grants.create(customer="user-2", feature="exports", value=10, reason="support")
        _until(lambda: local.check(customer="user-2", feature="exports").limit == 13, seconds=1.0)
        revocation = tollgate.entitlements.revocations.create(
            customer="user-2", feature="sso", reason="abuse"
        )
        _until(lambda: local.check(customer="user-2", feature="sso").allowed is False, seconds=1.0)
        tollgate.entitlements.revocations.delete(revocation.id, reason="appeal")
        _until(lambda: local.check(customer="user-2", feature="sso").allowed is True, seconds=1.0)


def test_a_catalog_change_drops_every_snapshot(counted, plans, tollgate):
    client, _ = counted
    with LocalEntitlements(client, **FAST) as local:
        local.check(customer="user-3", feature="exports")
        local.check(customer="user-4", feature="exports")
        tollgate.products.update(
            "free", features={"exports": 5, "seats": 2, "sso": True, "tier": {"name": "free"}}
        )
        _until(lambda: local.check(customer="user-3", feature="exports").limit == 5, seconds=1.0)
        assert local.check(customer="user-4", feature="exports").limit == 5


def test_the_feed_lists_changed_customers_in_order(tollgate, plans):
    start = tollgate.request("GET", "/entitlements/changes")
    assert (start["object"], start["resync"], start["customers"]) == ("entitlement_changes", False, [])
    tollgate.entitlements.grants.create(customer="user-5", feature="exports", value=1, reason="a")
    tollgate.entitlements.grants.create(customer="user-6", feature="sso", value=False, reason="b")
    changed = tollgate.request(
        "GET", "/entitlements/changes", params={"since": start["version"], "feed": start["feed"]}
    )
    assert changed["customers"] == ["user-5", "user-6"]
    assert (changed["feed"], changed["version"], changed["resync"]) == (
        start["feed"] or changed["feed"],
        start["version"] + 2,
        False,
    )
    again = tollgate.request(
        "GET", "/entitlements/changes", params={"since": changed["version"], "feed": changed["feed"]}
    )
    assert (again["customers"], again["version"], again["resync"]) == ([], changed["version"], False)
    other_feed = tollgate.request(
        "GET", "/entitlements/changes", params={"since": changed["version"], "feed": changed["feed"] + 1}
    )
    assert (other_feed["resync"], other_feed["customers"]) == (True, [])


def test_unreachable_tollgate_fails_closed_unless_the_feature_fails_open(live_server, tenant_a, plans):
    client = Tollgate(tenant_a.key, "http://127.0.0.1:9")  # nothing listens there
    with LocalEntitlements(client, fail_open={"sso"}, **FAST) as local:
        closed = local.check(customer="user-7", feature="exports")
        opened = local.check(customer="user-7", feature="sso")
    assert (closed.allowed, closed.enabled, closed.limit, closed.raw["unavailable"]) == (
        False,
        False,
        None,
        True,
    )
    assert (opened.allowed, opened.raw["unavailable"]) == (True, True)


def test_an_expired_snapshot_is_never_used(counted, plans, settings):
    settings.ENTITLEMENT_SNAPSHOT_SECONDS = 1
    client, http = counted
    with LocalEntitlements(client, push=False) as local:
        assert local.check(customer="user-8", feature="exports").allowed is True
        time.sleep(1.1)
        assert local.check(customer="user-8", feature="exports").allowed is True
    assert http.paths.count("/api/v1/entitlements/snapshot") == 2


def test_a_revoked_key_ends_local_answers(counted, plans, tenant_a):
    client, _ = counted
    with LocalEntitlements(client, **FAST) as local:
        assert local.check(customer="user-9", feature="sso").allowed is True
        api_key_revoke(actor=Actor.system(), api_key=tenant_a.api_key, reason="leaked")

        _until(
            lambda: _raises(lambda: local.check(customer="user-9", feature="sso"), AuthenticationError), 3.0
        )


def test_a_snapshot_signed_with_another_key_is_refused(counted, plans, tenant_a):
    client, _ = counted
    assert snapshot_signature(tenant_a.key, b"{}") == server_signature(tenant_a.key, b"{}")
    client._transport.api_key = tenant_a.key  # the key stays; the local store checks with another
    local = LocalEntitlements(client, **FAST)
    local._api_key = "tg_sk_another"
    with pytest.raises(SnapshotSignatureError):
        local.check(customer="user-10", feature="sso")
    local.close()


def test_an_unknown_feature_is_the_servers_404(counted, plans):
    client, _ = counted
    with LocalEntitlements(client, **FAST) as local, pytest.raises(NotFoundError):
        local.check(customer="user-11", feature="nope")


def test_a_check_naming_an_entity_is_answered_from_memory_as_the_server_answers_it(
    counted, per_seat, tollgate, tenant_a
):
    """The snapshot carries each live entity's use: a check naming one is answered from memory, fitting both the
    entity's own limit and the account's, as the server answers it; a consume passes the entity to the server and
    counts its new use here. An entity the snapshot does not know, or a feature with no limit per entity, is the
    server's to answer (or refuse)."""
    for seat in ("ana", "bo"):
        tollgate.entitlements.entities.add(customer="team-1", feature="seats", entity=seat)
    tollgate.entitlements.consume(id="s1", customer="team-1", feature="summaries", quantity=3, entity="ana")
    client, http = counted
    with LocalEntitlements(client, **FAST) as local:
        account = local.check(customer="team-1", feature="summaries", quantity=2)
        assert (account.allowed, account.used, account.remaining, account.entity) == (True, 3, 7, None)
        refused = local.check(customer="team-1", feature="summaries", quantity=2, entity="ana")
        fits = local.check(customer="team-1", feature="summaries", quantity=4, entity="bo")
        assert http.paths.count("/api/v1/entitlements/check") == 0
        assert (refused.allowed, refused.binding, refused.step, refused.used) == (False, "entity", None, 3)
        assert (refused.entity.id, refused.entity.used, refused.entity.remaining) == ("ana", 3, 1)
        assert (fits.allowed, fits.binding, fits.step, fits.entity.used, fits.entity.remaining) == (
            True,
            None,
            "allowance",
            0,
            4,
        )
        for mine, quantity, seat in ((refused, 2, "ana"), (fits, 4, "bo")):
            server = tollgate.entitlements.check(
                customer="team-1", feature="summaries", quantity=quantity, entity=seat
            )
            answer, expected = mine.to_dict(), server.to_dict()
            local_wait, server_wait = answer.pop("retry_after"), expected.pop("retry_after")
            assert answer == expected
            assert local_wait == server_wait if server_wait is None else abs(local_wait - server_wait) <= 1

        # An answer that does not depend on the time is kept (the entry is replaced when its counts move).
        assert local.check(customer="team-1", feature="summaries", quantity=4, entity="bo") is fits
        used = local.consume(id="s2", customer="team-1", feature="summaries", quantity=1, entity="ana")
        assert (used.allowed, used.used, used.entity.used, used.entity.remaining) == (True, 4, 4, 0)
        over = local.consume(id="s3", customer="team-1", feature="summaries", quantity=1, entity="ana")
        assert (over.allowed, over.binding, over.used, over.entity.used) == (False, "entity", 4, 4)
        after = local.check(customer="team-1", feature="summaries", entity="ana")  # its count, from memory
        assert (after.allowed, after.binding, after.used, after.remaining) == (False, "entity", 4, 6)
        assert (after.entity.used, after.entity.remaining) == (4, 0)
        assert http.paths.count("/api/v1/entitlements/check") == 0
        with pytest.raises(InvalidRequestError) as caught:
            local.check(customer="team-1", feature="summaries", entity="nobody")
        assert caught.value.code == "unknown_entity"
        with pytest.raises(InvalidRequestError) as caught:
            local.check(customer="team-1", feature="seats", entity="ana")
        assert caught.value.code == "entity_not_counted"
        assert http.paths.count("/api/v1/entitlements/check") == 2
    # Unreachable: a check naming an entity fails closed, or open for the features named, as any check does.
    unreachable = Tollgate(tenant_a.key, "http://127.0.0.1:9")  # nothing listens there
    with unreachable, LocalEntitlements(unreachable, fail_open={"summaries"}, **FAST) as local:
        opened = local.check(customer="team-1", feature="summaries", entity="ana")
        closed = local.check(customer="team-1", feature="exports", entity="ana")
    assert (opened.allowed, opened.raw["unavailable"], closed.allowed, closed.raw["unavailable"]) == (
        True,
        True,
        False,
        True,
    )


def test_a_snapshot_older_than_a_change_heard_is_not_kept(counted, plans):
    """A change the poller heard at a position past the snapshot's (the snapshot was read before that change
    committed): the answer is the server's, and the snapshot is not kept."""
    client, http = counted
    with LocalEntitlements(client, **FAST) as local:
        local.check(customer="user-12", feature="sso")  # the poller runs: a feed position is held
        local.forget("user-12")
        with local._lock:
            local._changed["user-12"] = (
                local._version + 10**6
            )  # as if heard past any snapshot the server has now
        paths = len(http.paths)
        answer = local.check(customer="user-12", feature="sso")
        asked = [path for path in http.paths[paths:] if "/changes" not in path]
    assert asked == ["/api/v1/entitlements/snapshot", "/api/v1/entitlements/check"]
    assert (answer.allowed, answer.raw.get("unavailable")) == (True, None)
    assert "user-12" not in local._snapshots


def test_a_suspended_project_ends_local_answers(counted, plans, tenant_a):
    client, _ = counted
    with LocalEntitlements(client, **FAST) as local:
        assert local.check(customer="user-13", feature="sso").allowed is True
        project_update(
            actor=Actor.system("test"),
            project=tenant_a.project,
            status=Project.Status.SUSPENDED,
            reason="unpaid",
        )

        _until(
            lambda: _raises(lambda: local.check(customer="user-13", feature="sso"), PermissionDeniedError),
            3.0,
        )
        assert local._snapshots == {}


def test_a_limit_that_allows_overage_answers_past_it_from_memory(counted, plans, tollgate, tenant_a):
    """A metered limit whose plan allows overage: the local answer is the server's, use past the limit allowed
    and `remaining` below 0 (the local rule is the server's, read from the snapshot's `overage`)."""
    from catalog.models import Feature
    from tests.entitlements.helpers import customer, feature, product, subscribe

    calls = feature(tenant_a.project, "calls", Feature.Type.METERED)
    subscribe(
        customer(tenant_a.project, "user-9"),
        product(tenant_a.project, "calls-plan", {calls: {"limit": 10, "overage": "allowed"}}),
    )
    tollgate.entitlements.consume(id="c1", customer="user-9", feature="calls", quantity=12)
    client, _ = counted
    with LocalEntitlements(client, **FAST) as local:
        answer = local.check(customer="user-9", feature="calls", quantity=50)
        server = tollgate.entitlements.check(customer="user-9", feature="calls", quantity=50)
        assert answer.to_dict() == server.to_dict()
        assert (answer.allowed, answer.used, answer.remaining, answer.overage) == (True, 12, -2, "allowed")
        blocked = local.check(customer="user-1", feature="exports", quantity=4)
        assert (blocked.allowed, blocked.overage) == (False, "blocked")


def test_zero_credits_fit_a_balance_of_zero_from_memory_as_on_the_server(counted, plans, tollgate):
    """`quantity=0` of a `credits` feature: `balance >= quantity` (docs, "Reading"), locally as on the server."""
    client, http = counted
    with LocalEntitlements(client, **FAST) as local:
        for quantity, allowed in ((0, True), (1, False)):
            answer = local.check(customer="user-14", feature="ai_credits", quantity=quantity)
            server = tollgate.entitlements.check(customer="user-14", feature="ai_credits", quantity=quantity)
            assert answer.to_dict() == server.to_dict()
            assert (answer.allowed, answer.enabled, answer.balance) == (allowed, False, 0)
    assert http.paths.count("/api/v1/entitlements/check") == 0  # both answered from the snapshot


def test_another_customers_snapshot_served_in_place_of_the_one_asked_for_is_refused(
    proxy, plans, tollgate, tenant_a
):
    """A validly signed snapshot of another customer (a proxy, or storage the snapshots are shared through,
    hands over user-16's for user-15's): refused like a forged one, and nothing is kept."""
    tollgate.entitlements.revocations.create(customer="user-16", feature="sso", reason="test")
    proxy.rewrite = lambda path: path.replace("customer=user-15", "customer=user-16")
    with Tollgate(tenant_a.key, proxy.url, timeout=10) as client, LocalEntitlements(client, **FAST) as local:
        with pytest.raises(SnapshotSignatureError, match="user-16"):
            local.check(customer="user-15", feature="sso")
        assert local._snapshots == {}
        proxy.rewrite = None
        assert local.check(customer="user-15", feature="sso").allowed is True
        assert list(local._snapshots) == ["user-15"]


def test_an_entitys_own_windows_answer_from_memory_as_on_the_server(counted, per_seat, tollgate, tenant_a):
    """Seats with windows of their own (3 a minute, 5 a day): the snapshot carries each live seat's windows, a
    check naming one is refused from memory by the window that refuses it for longest, with the server's answer
    and (to the second) `retry_after`; a consume counts the seat's new windows here."""
    fresh_minute = (int(time.time()) // 60 + 1) * 60 + 2  # the minute cannot turn over mid-test
    with time_machine.travel(fresh_minute, tick=True):
        free = tollgate.products.retrieve("free")
        value = {
            "limit": 10,
            "per_entity": {"feature": "seats", "limit": 8, "windows": {"minute": 3, "day": 5}},
        }
        tollgate.products.update("free", features={**free.features, "summaries": value})
        for seat in ("ana", "bo"):
            tollgate.entitlements.entities.add(customer="team-1", feature="seats", entity=seat)
        tollgate.entitlements.consume(
            id="s1", customer="team-1", feature="summaries", quantity=3, entity="ana"
        )
        client, http = counted
        with LocalEntitlements(client, **FAST) as local:
            minute = local.check(customer="team-1", feature="summaries", quantity=1, entity="ana")
            day = local.check(customer="team-1", feature="summaries", quantity=3, entity="ana")
            fits = local.check(customer="team-1", feature="summaries", quantity=3, entity="bo")
            assert http.paths.count("/api/v1/entitlements/check") == 0
            assert (minute.allowed, minute.binding, minute.entity.binding) == (False, "entity", "minute")
            assert 1 <= (minute.retry_after or 0) <= 60
            assert (day.allowed, day.binding, day.entity.binding) == (False, "entity", "day")
            assert [(w.window, w.used, w.remaining) for w in day.entity.windows] == [
                ("minute", 3, 0),
                ("day", 3, 2),
            ]
            assert (fits.allowed, fits.entity.binding, fits.used) == (True, None, 3)
            for mine, quantity, seat in ((minute, 1, "ana"), (day, 3, "ana"), (fits, 3, "bo")):
                server = tollgate.entitlements.check(
                    customer="team-1", feature="summaries", quantity=quantity, entity=seat
                )
                answer, expected = mine.to_dict(), server.to_dict()
                local_wait, server_wait = answer.pop("retry_after"), expected.pop("retry_after")
                assert answer == expected
                assert (
                    local_wait == server_wait if server_wait is None else abs(local_wait - server_wait) <= 1
                )
            used = local.consume(id="s2", customer="team-1", feature="summaries", quantity=2, entity="bo")
            assert [(w.window, w.used) for w in used.entity.windows] == [("minute", 2), ("day", 2)]
            after = local.check(customer="team-1", feature="summaries", quantity=2, entity="bo")
            assert (after.allowed, after.entity.binding, after.entity.windows[0].remaining) == (
                False,
                "minute",
                1,
            )
            assert http.paths.count("/api/v1/entitlements/check") == 0


def test_usage_windows_answer_from_memory_as_on_the_server(counted, plans, tollgate, tenant_a):
    """A metered feature with usage windows: the local answer lists the windows as the server does, and a use
    that does not fit a window is refused locally with the same `binding` and (to the second) `retry_after`."""
    # Two seconds into a fresh minute, the clock running: the minute window cannot turn over mid-test.
    fresh_minute = (int(time.time()) // 60 + 1) * 60 + 2
    with time_machine.travel(fresh_minute, tick=True):
        _usage_windows_from_memory(counted, tollgate, tenant_a)


def _usage_windows_from_memory(counted, tollgate, tenant_a):
    from catalog.models import Feature
    from tests.entitlements.helpers import customer, feature, product, subscribe

    searches = feature(tenant_a.project, "searches", Feature.Type.METERED)
    subscribe(
        customer(tenant_a.project, "user-21"),
        product(
            tenant_a.project, "search-plan", {searches: {"limit": 1000, "windows": {"minute": 50, "day": 60}}}
        ),
    )
    client, http = counted
    with LocalEntitlements(client, **FAST) as local:
        used = local.consume(id="s1", customer="user-21", feature="searches", quantity=40)
        assert [(w.window, w.used, w.remaining) for w in used.windows] == [
            ("minute", 40, 10),
            ("day", 40, 20),
        ]
        for quantity in (10, 11, 21):
            answer = local.check(customer="user-21", feature="searches", quantity=quantity).to_dict()
            server = tollgate.entitlements.check(
                customer="user-21", feature="searches", quantity=quantity
            ).to_dict()
            local_wait, server_wait = answer.pop("retry_after"), server.pop("retry_after")
            assert answer == server
            assert local_wait == server_wait or abs(local_wait - server_wait) <= 1
        assert http.paths.count("/api/v1/entitlements/check") == 0  # answered from the snapshot
        refused = local.check(customer="user-21", feature="searches", quantity=11)
        assert (refused.allowed, refused.binding) == (False, "minute")
        assert 1 <= refused.retry_after <= 60
        longest = local.check(customer="user-21", feature="searches", quantity=21)
        assert (longest.allowed, longest.binding) == (False, "day")
        assert local.check(customer="user-21", feature="searches", quantity=61).retry_after is None


def test_a_spend_cap_answers_from_memory_as_on_the_server(counted, plans, tollgate, tenant_a):
    """A metered limit with overage and a spend cap of 5 units past it: the local answer carries the cap as the
    server's does, and refuses the use past it with `binding: "cap"`."""
    from catalog.models import Feature
    from tests.entitlements.helpers import customer, feature, product, subscribe

    calls = feature(tenant_a.project, "calls", Feature.Type.METERED)
    value = {"limit": 10, "overage": "allowed", "cap": {"units": 5}}
    subscribe(customer(tenant_a.project, "user-22"), product(tenant_a.project, "capped-plan", {calls: value}))
    tollgate.entitlements.consume(id="c1", customer="user-22", feature="calls", quantity=12)
    client, http = counted
    with LocalEntitlements(client, **FAST) as local:
        slack = 1
        for quantity in (3, 4):
            asked = time.monotonic()
            answer = local.check(customer="user-22", feature="calls", quantity=quantity).to_dict()
            # The local clock is the server's as the snapshot told it, sampled somewhere within the snapshot's
            # request: off by at most that request's time (seconds on a loaded CI machine), plus rounding.
            slack = max(slack, 1 + math.ceil(time.monotonic() - asked))
            server = tollgate.entitlements.check(
                customer="user-22", feature="calls", quantity=quantity
            ).to_dict()
            local_wait, server_wait = answer.pop("retry_after"), server.pop("retry_after")
            assert answer == server
            assert local_wait == server_wait or abs(local_wait - server_wait) <= slack
        refused = local.check(customer="user-22", feature="calls", quantity=4)
        assert (refused.allowed, refused.binding, refused.cap.used_units, refused.cap.left_units) == (
            False,
            "cap",
            2,
            3,
        )
    assert http.paths.count("/api/v1/entitlements/check") == 0


def test_an_answer_kept_in_memory_is_not_served_after_a_local_consume(counted, plans, tollgate):
    """Answers are kept per snapshot entry and quantity; a local consume replaces the entry, so the next check
    counts the use (and a refused answer, which depends on the time, is never kept)."""
    client, _ = counted
    with LocalEntitlements(client, **FAST) as local:
        before = local.check(customer="user-23", feature="exports")
        assert local.check(customer="user-23", feature="exports") is before  # kept
        local.consume(id="x1", customer="user-23", feature="exports", quantity=3)
        after = local.check(customer="user-23", feature="exports")
        assert (before.used, after.used, after.allowed, after.binding) == (0, 3, False, "period")
        assert local.check(customer="user-23", feature="exports") is not after  # refused: made again


def test_a_credits_waterfall_answers_from_memory_as_on_the_server(counted, plans, tollgate, tenant_a):
    """A metered limit of 10 whose use past it is paid with credits, 2 a unit, then overage capped at 3 units: the
    local answer names the step each quantity comes from and what the credits pay for, as the server does, and
    follows the balance as local consumes of either feature spend it."""
    from catalog.models import Feature
    from tests.entitlements.helpers import customer, feature, product, subscribe

    calls = feature(tenant_a.project, "calls", Feature.Type.METERED)
    feature(tenant_a.project, "tokens", Feature.Type.CREDITS)
    value = {
        "limit": 10,
        "overage": "allowed",
        "cap": {"units": 3},
        "credits": {"feature": "tokens", "cost": 2},
    }
    subscribe(customer(tenant_a.project, "user-24"), product(tenant_a.project, "paid-plan", {calls: value}))
    tollgate.entitlements.grants.create(customer="user-24", feature="tokens", value=9, reason="promo")
    tollgate.entitlements.consume(id="c1", customer="user-24", feature="calls", quantity=8)
    client, http = counted

    def same(local: LocalEntitlements, quantity: int) -> str | None:
        answer = local.check(customer="user-24", feature="calls", quantity=quantity).to_dict()
        server = tollgate.entitlements.check(customer="user-24", feature="calls", quantity=quantity).to_dict()
        local_wait, server_wait = answer.pop("retry_after"), server.pop("retry_after")
        assert answer == server
        assert local_wait == server_wait or abs(local_wait - server_wait) <= 1
        return answer["step"]

    with LocalEntitlements(client, **FAST) as local:
        assert [same(local, quantity) for quantity in (2, 3, 6, 9, 10)] == [
            "allowance",
            "credits",
            "credits",
            "overage",
            None,
        ]
        paid = local.consume(id="c2", customer="user-24", feature="calls", quantity=4)  # 2 + 2 paid
        assert (paid.credits.balance, paid.credits.covered, paid.remaining) == (5, 2, 0)
        assert [same(local, quantity) for quantity in (2, 3, 5, 6)] == ["credits", "overage", "overage", None]
        local.consume(id="t1", customer="user-24", feature="tokens", quantity=4)  # the credits spent directly
        assert [same(local, quantity) for quantity in (1, 3, 4)] == ["overage", "overage", None]
    assert http.paths.count("/api/v1/entitlements/check") == 0


def test_an_account_cap_answers_from_memory_as_on_the_server(counted, tollgate, tenant_a, stripe_emulator):
    """An account cap of 50 cents across calls (2 cents each past 100) and tokens (1 cent past 1,000): the local
    answers carry it as the server's do, refuse past it with `binding: "account_cap"`, and follow a local
    consume of one feature in the other's answer."""
    from tests.entitlements.test_account_caps import billed_plan

    billed_plan(tenant_a.project, "user-25")
    tollgate.entitlements.spend_caps.set(customer="user-25", cap={"amount": 50, "currency": "usd"})
    tollgate.entitlements.consume(id="c1", customer="user-25", feature="api_calls", quantity=110)
    client, http = counted

    def same(local: LocalEntitlements, feature: str, quantity: int) -> dict:
        answer = local.check(customer="user-25", feature=feature, quantity=quantity).to_dict()
        server = tollgate.entitlements.check(customer="user-25", feature=feature, quantity=quantity).to_dict()
        local_wait, server_wait = answer.pop("retry_after"), server.pop("retry_after")
        assert answer == server
        assert local_wait == server_wait or abs(local_wait - server_wait) <= 1
        return answer

    with LocalEntitlements(client, **FAST) as local:
        assert same(local, "tokens", 30)["account_cap"] == {
            "at_cap": "block",
            "set_by": "customer",
            "amount": 50,
            "currency": "usd",
            "used_amount": 20,
            "left_amount": 30,
            "left_units": 1030,
        }
        assert (same(local, "api_calls", 15)["allowed"], same(local, "api_calls", 16)["binding"]) == (
            True,
            "account_cap",
        )
        local.consume(id="t1", customer="user-25", feature="tokens", quantity=1026)  # 26 cents
        assert same(local, "api_calls", 2)["allowed"] is True
        refused = local.check(customer="user-25", feature="api_calls", quantity=3)
        assert (refused.allowed, refused.binding, refused.account_cap.left_units) == (False, "account_cap", 2)
        assert same(local, "tokens", 5)["allowed"] is False
    assert http.paths.count("/api/v1/entitlements/check") == 0


def test_an_account_cap_bounds_pay_as_you_go_use_from_memory_as_on_the_server(
    counted, tollgate, tenant_a, stripe_emulator
):
    """Calls without a limit, 2 cents each, under a blocking account cap of 50 cents: the local answers carry the
    cap and refuse past it as the server's do."""
    from tests.entitlements.test_account_cap_pay_as_you_go import pay_as_you_go_plan

    pay_as_you_go_plan(tenant_a.project, "user-26")
    tollgate.entitlements.spend_caps.set(customer="user-26", cap={"amount": 50, "currency": "usd"})
    tollgate.entitlements.consume(id="c1", customer="user-26", feature="api_calls", quantity=20)
    client, http = counted
    with LocalEntitlements(client, **FAST) as local:
        for quantity in (5, 6):
            answer = local.check(customer="user-26", feature="api_calls", quantity=quantity).to_dict()
            server = tollgate.entitlements.check(customer="user-26", feature="api_calls", quantity=quantity)
            server_answer = server.to_dict()
            local_wait, server_wait = answer.pop("retry_after"), server_answer.pop("retry_after")
            assert answer == server_answer
            assert local_wait == server_wait or abs(local_wait - server_wait) <= 1
        assert (answer["allowed"], answer["binding"], answer["account_cap"]["left_units"]) == (
            False,
            "account_cap",
            5,
        )
    assert http.paths.count("/api/v1/entitlements/check") == 0


def test_a_quantity_the_server_refuses_is_refused_locally_as_on_the_server(counted, tollgate, tenant_a):
    """A negative or fractional quantity is the server's 400 `invalid_parameter`: the local check asks the server
    and raises its error (answered from the snapshot, a negative quantity fitted a waterfall's credits step)."""
    from tollgate_client import InvalidRequestError

    from catalog.models import Feature
    from tests.entitlements.helpers import customer, feature, product, subscribe

    calls = feature(tenant_a.project, "calls", Feature.Type.METERED)
    plan = product(tenant_a.project, "p", {calls: {"limit": 5, "overage": "allowed"}})
    subscribe(customer(tenant_a.project, "u-neg"), plan)
    tollgate.entitlements.consume(id="c1", customer="u-neg", feature="calls", quantity=8)
    client, http = counted
    with LocalEntitlements(client, **FAST) as local:
        assert local.check(customer="u-neg", feature="calls", quantity=1).allowed is True
        for quantity in (-2, 1.5):
            with pytest.raises(InvalidRequestError) as refused:
                local.check(customer="u-neg", feature="calls", quantity=quantity)  # type: ignore[arg-type]
            assert (refused.value.code, refused.value.param) == ("invalid_parameter", "quantity")
    assert http.paths.count("/api/v1/entitlements/check") == 2
