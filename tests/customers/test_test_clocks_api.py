"""Test clocks through Tollgate's API: create, list, retrieve, advance, delete; customers created on a clock;
test mode only; refusals that write nothing (here or at Stripe); another project's clock is missing (404).

What reaches Stripe is checked with the official SDK against the emulator, and the idempotency keys of the
Stripe writes are read at the HTTP boundary (`Recorder`, the emulator's SDK transport with a log)."""

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from core.models import AuditLogEntry
from customers.models import Customer, TestClock
from stripe_emulator.sdk import EmulatorHTTPClient
from stripe_gateway.client import install_http_client
from tests.projects.factories import ApiKeyFactory, ProjectFactory

pytestmark = pytest.mark.django_db

FROZEN = "2026-01-15T00:00:00Z"
FROZEN_TS = 1_768_435_200
FEB_15_TS = 1_771_113_600


class Recorder(EmulatorHTTPClient):
    """The emulator's transport, logging each Stripe write: (method, path, Idempotency-Key)."""

    def __init__(self, emulator: Any) -> None:
        super().__init__(emulator)
        self.writes: list[tuple[str, str, str]] = []

    def request(self, method: str, url: str, headers: Any, post_data: Any = None, **kwargs: Any) -> Any:
        if method.lower() in ("post", "delete"):
            key = dict(headers or {}).get("Idempotency-Key", "")
            self.writes.append((method.upper(), urlsplit(url).path, key))
        return super().request(method, url, headers, post_data, **kwargs)


@pytest.fixture
def recorder(stripe_emulator):
    recorder = Recorder(stripe_emulator)
    install_http_client(recorder)  # the autouse emulator fixture uninstalls it after the test
    return recorder


def _z(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def _create(api, tenant, body=None, **kwargs):
    return api.post("/api/v1/test_clocks", {"frozen_time": FROZEN, **(body or {})}, key=tenant.key, **kwargs)


def _stripe_clocks(sdk) -> list[str]:
    return [c.id for c in sdk.v1.test_helpers.test_clocks.list().data]


def test_create_list_retrieve(api, tenant_a, stripe_sdk, recorder):
    created = _create(api, tenant_a, {"name": "Renewals"})

    assert created.status_code == 201, created.json()
    body = created.json()
    clock = TestClock.objects.get()
    stripe_clock = stripe_sdk().v1.test_helpers.test_clocks.retrieve(clock.stripe_test_clock_id)
    assert body == {
        "id": clock.pk,
        "object": "test_clock",
        "name": "Renewals",
        "frozen_time": FROZEN,
        "status": "ready",
        "advancing_to": None,
        "deletes_after": _z(stripe_clock.deletes_after),
        "customers": [],
        "stripe_test_clock_id": stripe_clock.id,
        "created_at": clock.created_at.isoformat().replace("+00:00", "Z"),
    }
    assert body["id"].startswith("tclk_")
    assert (stripe_clock.frozen_time, stripe_clock.name, stripe_clock.status) == (
        FROZEN_TS,
        "Renewals",
        "ready",
    )
    assert recorder.writes == [("POST", "/v1/test_helpers/test_clocks", f"test-clock:{clock.pk}:create")]
    audit = AuditLogEntry.objects.get(action="test_clock.created")
    assert (audit.target_id, audit.project_id, audit.actor_type, audit.actor_id) == (
        clock.pk,
        tenant_a.project.pk,
        "api_key",
        tenant_a.api_key.pk,
    )

    second = _create(api, tenant_a).json()
    assert second["name"] is None
    listed = api.get("/api/v1/test_clocks", key=tenant_a.key).json()
    assert [c["id"] for c in listed["data"]] == [second["id"], body["id"]]
    assert listed["has_more"] is False
    assert api.get(f"/api/v1/test_clocks/{clock.pk}", key=tenant_a.key).json() == body


def test_the_same_idempotency_key_creates_one_clock(api, tenant_a, stripe_sdk):
    first = _create(api, tenant_a, headers={"Idempotency-Key": "clock-1"})
    again = _create(api, tenant_a, headers={"Idempotency-Key": "clock-1"})
    assert (first.status_code, again.status_code, again.headers["Idempotent-Replayed"]) == (201, 201, "true")
    assert again.json() == first.json()
    assert TestClock.objects.count() == 1
    assert len(_stripe_clocks(stripe_sdk())) == 1


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"frozen_time": None}, "frozen_time", "parameter_missing"),
        ({"frozen_time": "tomorrow"}, "frozen_time", "invalid_parameter"),
        ({"frozen_time": "1969-12-31T00:00:00Z"}, "frozen_time", "invalid_parameter"),
        ({"name": "x" * 301}, "name", "invalid_parameter"),
        ({"livemode": False}, "livemode", "unknown_parameter"),
    ],
)
def test_bad_create_requests_write_nothing(api, tenant_a, stripe_sdk, body, param, code):
    response = _create(api, tenant_a, body)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert TestClock.objects.count() == 0
    assert _stripe_clocks(stripe_sdk()) == []
    assert not AuditLogEntry.objects.filter(action__startswith="test_clock.").exists()


def test_a_missing_frozen_time_is_refused(api, tenant_a, stripe_sdk):
    response = api.post("/api/v1/test_clocks", {"name": "x"}, key=tenant_a.key)
    assert (response.status_code, response.json()["error"]["param"]) == (400, "frozen_time")
    assert (TestClock.objects.count(), _stripe_clocks(stripe_sdk())) == (0, [])


@pytest.fixture
def live(db):
    """A project on a live Stripe key (never called: every test-clock request is refused before Stripe)."""
    api_key = ApiKeyFactory(project=ProjectFactory(slug="live", stripe_secret_key="sk_live_tollgate_real"))
    return api_key


def test_live_mode_projects_are_refused_before_stripe(api, live, stripe_emulator):
    response = api.post("/api/v1/test_clocks", {"frozen_time": FROZEN}, key=live.secret)
    assert response.status_code == 403
    assert response.json()["error"] == {
        "type": "permission_error",
        "code": "test_mode_only",
        "message": "Test clocks exist only in Stripe's test mode, and this project's Stripe key is a live key.",
        "param": None,
    }
    clock = TestClock.objects.create(
        project=live.project,
        frozen_time=datetime.fromtimestamp(FROZEN_TS, tz=UTC),
        deletes_after=datetime.fromtimestamp(FEB_15_TS, tz=UTC),
        stripe_test_clock_id="clock_left_from_test_mode",
    )
    advance = api.post(
        f"/api/v1/test_clocks/{clock.pk}/advance", {"frozen_time": _z(FEB_15_TS)}, key=live.secret
    )
    assert (advance.status_code, advance.json()["error"]["code"]) == (403, "test_mode_only")
    on_clock = api.post("/api/v1/customers", {"external_id": "u", "test_clock": clock.pk}, key=live.secret)
    assert (on_clock.status_code, on_clock.json()["error"]["code"]) == (403, "test_mode_only")
    deleted = api.delete(f"/api/v1/test_clocks/{clock.pk}", key=live.secret)
    assert deleted.status_code == 403
    assert list(TestClock.objects.values_list("pk", "frozen_time")) == [
        (clock.pk, datetime.fromtimestamp(FROZEN_TS, tz=UTC))
    ]
    assert Customer.objects.count() == 0
    assert stripe_emulator.accounts == {}  # Stripe never heard of it


def test_a_customer_is_created_on_the_clock(api, tenant_a, stripe_sdk, recorder):
    clock = _create(api, tenant_a).json()
    created = api.post(
        "/api/v1/customers",
        {"external_id": "user-1", "email": "u1@example.com", "test_clock": clock["id"]},
        key=tenant_a.key,
    )

    assert created.status_code == 201, created.json()
    body = created.json()
    customer = Customer.objects.get()
    assert (body["test_clock"], body["stripe_customer_id"]) == (clock["id"], customer.stripe_customer_id)
    at_stripe = stripe_sdk().v1.customers.retrieve(customer.stripe_customer_id)
    assert (at_stripe.test_clock, at_stripe.email, at_stripe.created) == (
        clock["stripe_test_clock_id"],
        "u1@example.com",
        FROZEN_TS,
    )
    assert recorder.writes[-1] == (
        "POST",
        "/v1/customers",
        f"customer:{customer.pk}:create:{clock['stripe_test_clock_id']}",
    )
    assert api.get(f"/api/v1/test_clocks/{clock['id']}", key=tenant_a.key).json()["customers"] == ["user-1"]

    # The same body again changes nothing, here or at Stripe.
    writes = len(recorder.writes)
    again = api.post(
        "/api/v1/customers", {"external_id": "user-1", "test_clock": clock["id"]}, key=tenant_a.key
    )
    assert (again.status_code, again.json()) == (200, body)
    assert len(recorder.writes) == writes


def test_a_customer_already_at_stripe_cannot_move_onto_a_clock(api, tenant_a, stripe_sdk):
    from customers.services.customers import customer_ensure_stripe

    clock = _create(api, tenant_a).json()
    other = _create(api, tenant_a).json()
    api.post("/api/v1/customers", {"external_id": "plain"}, key=tenant_a.key)
    plain_stripe = customer_ensure_stripe(customer=Customer.objects.get(external_id="plain"))
    api.post("/api/v1/customers", {"external_id": "clocked", "test_clock": clock["id"]}, key=tenant_a.key)
    before = list(Customer.objects.order_by("pk").values())

    for external_id, target in (("plain", clock["id"]), ("clocked", other["id"])):
        refused = api.post(
            "/api/v1/customers",
            {"external_id": external_id, "test_clock": target, "name": "Renamed"},
            key=tenant_a.key,
        )
        assert refused.status_code == 409
        assert refused.json()["error"] == {
            "type": "conflict",
            "code": "test_clock_immutable",
            "message": "This customer exists at Stripe already, and Stripe cannot move a customer onto a test "
            "clock: create a new customer on the clock instead.",
            "param": "test_clock",
        }
    assert list(Customer.objects.order_by("pk").values()) == before
    assert stripe_sdk().v1.customers.retrieve(plain_stripe).test_clock is None
    assert stripe_sdk().v1.customers.retrieve(plain_stripe).name is None

    # A customer Tollgate has not created at Stripe yet may still go onto a clock.
    api.post("/api/v1/customers", {"external_id": "local"}, key=tenant_a.key)
    moved = api.post(
        "/api/v1/customers", {"external_id": "local", "test_clock": clock["id"]}, key=tenant_a.key
    )
    assert (moved.status_code, moved.json()["test_clock"]) == (200, clock["id"])
    local = Customer.objects.get(external_id="local")
    assert (
        stripe_sdk().v1.customers.retrieve(local.stripe_customer_id).test_clock
        == clock["stripe_test_clock_id"]
    )


def test_another_projects_clock_is_missing(api, tenant_a, tenant_b, stripe_sdk):
    theirs = _create(api, tenant_b).json()
    before = list(TestClock.objects.values())
    for method, path, body in (
        ("GET", f"/api/v1/test_clocks/{theirs['id']}", None),
        ("POST", f"/api/v1/test_clocks/{theirs['id']}/advance", {"frozen_time": _z(FEB_15_TS)}),
        ("DELETE", f"/api/v1/test_clocks/{theirs['id']}", None),
    ):
        response = api.request(method, path, key=tenant_a.key, json_body=body)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["type"] == "not_found"
    on_theirs = api.post(
        "/api/v1/customers", {"external_id": "user-1", "test_clock": theirs["id"]}, key=tenant_a.key
    )
    assert on_theirs.status_code == 404
    assert (on_theirs.json()["error"]["type"], on_theirs.json()["error"]["param"]) == (
        "not_found",
        "test_clock",
    )
    assert api.get("/api/v1/test_clocks", key=tenant_a.key).json()["data"] == []
    assert list(TestClock.objects.values()) == before
    assert Customer.objects.count() == 0
    stripe_clock = stripe_sdk().v1.test_helpers.test_clocks.retrieve(theirs["stripe_test_clock_id"])
    assert (stripe_clock.frozen_time, stripe_sdk().v1.customers.list().data) == (FROZEN_TS, [])


def test_advance_moves_the_clock_and_refusals_change_nothing(api, tenant_a, stripe_sdk, recorder):
    clock = _create(api, tenant_a).json()
    path = f"/api/v1/test_clocks/{clock['id']}/advance"
    sdk = stripe_sdk()

    for body, status, param, code in (
        ({"frozen_time": FROZEN}, 400, "frozen_time", "invalid_parameter"),
        ({"frozen_time": "2026-01-14T00:00:00Z"}, 400, "frozen_time", "invalid_parameter"),
        ({}, 400, "frozen_time", "parameter_missing"),
        ({"frozen_time": _z(FEB_15_TS), "at": 1}, 400, "at", "unknown_parameter"),
        # Stripe's own limit: two years ahead for a clock without subscriptions.
        ({"frozen_time": "2028-01-16T00:00:00Z"}, 400, "frozen_time", "test_clock_advance_refused"),
    ):
        refused = api.post(path, body, key=tenant_a.key)
        assert refused.status_code == status, refused.json()
        error = refused.json()["error"]
        assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
        assert (
            sdk.v1.test_helpers.test_clocks.retrieve(clock["stripe_test_clock_id"]).frozen_time == FROZEN_TS
        )
        assert TestClock.objects.get().frozen_time == datetime.fromtimestamp(FROZEN_TS, tz=UTC)
    assert refused.json()["error"]["message"].startswith(
        "Stripe refused to advance the clock: Cannot advance"
    )

    advanced = api.post(path, {"frozen_time": _z(FEB_15_TS)}, key=tenant_a.key)

    assert advanced.status_code == 200, advanced.json()
    assert advanced.json() == {
        **clock,
        "frozen_time": _z(FEB_15_TS),
        "status": "ready",  # the emulator finishes before answering; Stripe may still say `advancing`
        "advancing_to": None,
    }
    assert sdk.v1.test_helpers.test_clocks.retrieve(clock["stripe_test_clock_id"]).frozen_time == FEB_15_TS
    assert recorder.writes[-1] == (
        "POST",
        f"/v1/test_helpers/test_clocks/{clock['stripe_test_clock_id']}/advance",
        f"test-clock:{clock['id']}:advance:{FEB_15_TS}",
    )
    audit = AuditLogEntry.objects.get(action="test_clock.advanced")
    assert (audit.before["frozen_time"], audit.after["advancing_to"]) == (
        "2026-01-15T00:00:00Z",
        "2026-02-15T00:00:00Z",
    )


def test_an_advance_whose_progress_cannot_be_read_answers_the_clock_advancing(api, tenant_a, stripe_emulator):
    """The advance is made and audited; the look at its progress that follows fails on the network (Stripe's
    side of the wire, the one boundary a test may cut): the tenant gets the clock as Stripe answered the advance,
    not an error, and reads `ready` later."""
    import stripe

    class ReadsFail(EmulatorHTTPClient):
        def __init__(self, emulator: Any) -> None:
            super().__init__(emulator)
            self.failing = False

        def request(self, method: str, url: str, headers: Any, post_data: Any = None, **kwargs: Any) -> Any:
            if self.failing and method.lower() == "get":
                raise stripe.APIConnectionError("connection refused", should_retry=False)
            answer = super().request(method, url, headers, post_data, **kwargs)
            if method.lower() == "post" and urlsplit(url).path.endswith("/advance"):
                self.failing = True
            return answer

    clock = _create(api, tenant_a).json()
    transport = ReadsFail(stripe_emulator)
    install_http_client(transport)

    advanced = api.post(
        f"/api/v1/test_clocks/{clock['id']}/advance", {"frozen_time": _z(FEB_15_TS)}, key=tenant_a.key
    )

    assert advanced.status_code == 200, advanced.json()
    assert (advanced.json()["status"], advanced.json()["advancing_to"]) == ("advancing", _z(FEB_15_TS))
    assert AuditLogEntry.objects.filter(action="test_clock.advanced").count() == 1
    transport.failing = False
    retrieved = api.get(f"/api/v1/test_clocks/{clock['id']}", key=tenant_a.key).json()
    assert (retrieved["status"], retrieved["frozen_time"]) == ("ready", _z(FEB_15_TS))


def test_an_advance_in_progress_is_read_from_stripe_until_ready(api, tenant_a, stripe_sdk):
    """Stripe answers an advance with `advancing` and finishes later: the clock is re-read while so."""
    clock = _create(api, tenant_a).json()
    TestClock.objects.filter(pk=clock["id"]).update(
        status="advancing", advancing_to=datetime.fromtimestamp(FEB_15_TS, tz=UTC)
    )
    busy = api.get("/api/v1/test_clocks", key=tenant_a.key).json()["data"][0]
    # The list shows what it holds.
    assert (busy["status"], busy["advancing_to"]) == ("advancing", _z(FEB_15_TS))
    retrieved = api.get(f"/api/v1/test_clocks/{clock['id']}", key=tenant_a.key).json()
    assert (retrieved["status"], retrieved["advancing_to"], retrieved["frozen_time"]) == (
        "ready",
        None,
        FROZEN,
    )
    assert TestClock.objects.get().status == "ready"


def test_a_second_advance_waits_for_the_first(api, tenant_a, stripe_sdk, stripe_emulator):
    clock = _create(api, tenant_a).json()
    sdk = stripe_sdk()
    # Stripe still advancing: the emulator's clock object says so (Stripe finishes on its own time).
    account = stripe_emulator.account("sk_test_tollgate_platform")
    stripe_obj = account.store.get("test_helpers.test_clock", clock["stripe_test_clock_id"])
    stripe_obj["status"] = "advancing"
    stripe_obj["status_details"] = {"advancing": {"target_frozen_time": FEB_15_TS}}
    TestClock.objects.filter(pk=clock["id"]).update(status="advancing")

    refused = api.post(
        f"/api/v1/test_clocks/{clock['id']}/advance", {"frozen_time": _z(FEB_15_TS + 60)}, key=tenant_a.key
    )

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "test_clock_advancing"
    assert sdk.v1.test_helpers.test_clocks.retrieve(clock["stripe_test_clock_id"]).frozen_time == FROZEN_TS
    assert not AuditLogEntry.objects.filter(action="test_clock.advanced").exists()


def test_delete_removes_the_clock_and_its_stripe_customers(api, tenant_a, stripe_sdk, stripe_webhooks):
    clock = _create(api, tenant_a).json()
    api.post("/api/v1/customers", {"external_id": "user-1", "test_clock": clock["id"]}, key=tenant_a.key)
    stripe_customer = Customer.objects.get().stripe_customer_id
    stripe_webhooks.deliver()

    deleted = api.delete(f"/api/v1/test_clocks/{clock['id']}", key=tenant_a.key)

    assert deleted.status_code == 200
    assert deleted.json() == {**clock, "customers": ["user-1"], "deleted": True}
    assert TestClock.objects.count() == 0
    assert stripe_sdk().v1.customers.retrieve(stripe_customer).deleted is True
    assert _stripe_clocks(stripe_sdk()) == []
    shown = api.get("/api/v1/customers/user-1", key=tenant_a.key).json()
    assert (shown["test_clock"], shown["stripe_customer_id"]) == (None, stripe_customer)
    stripe_webhooks.deliver()  # Stripe's customer.deleted unlinks it: the next purchase makes a new one
    assert api.get("/api/v1/customers/user-1", key=tenant_a.key).json()["stripe_customer_id"] is None
    assert api.get(f"/api/v1/test_clocks/{clock['id']}", key=tenant_a.key).status_code == 404
    assert AuditLogEntry.objects.get(action="test_clock.deleted").before["customers"] == ["user-1"]


def test_a_clock_stripe_deleted_after_deletes_after_is_gone(api, tenant_a, stripe_sdk, stripe_emulator):
    clock = _create(api, tenant_a).json()
    api.post("/api/v1/customers", {"external_id": "user-1", "test_clock": clock["id"]}, key=tenant_a.key)
    assert api.get(f"/api/v1/test_clocks/{clock['id']}", key=tenant_a.key).status_code == 200
    # Stripe deletes the clock (and its customers) by itself once `deletes_after` has passed.
    stripe_sdk().v1.test_helpers.test_clocks.delete(clock["stripe_test_clock_id"])
    TestClock.objects.filter(pk=clock["id"]).update(deletes_after=datetime(2026, 2, 1, tzinfo=UTC))

    gone = api.get(f"/api/v1/test_clocks/{clock['id']}", key=tenant_a.key)

    assert gone.status_code == 404
    assert gone.json()["error"]["message"] == f"No such test clock: {clock['id']!r}."
    assert TestClock.objects.count() == 0
    assert api.get("/api/v1/customers/user-1", key=tenant_a.key).json()["test_clock"] is None
