"""The path of one Stripe event at run time (docs/architecture.md, "The path of one Stripe event"): a
`checkout.session.completed`, delivered before its sibling events (the case that does the most), goes inbox →
billing's handler → entitlements and events, and never back up. `tests/test_floor_plan.py` holds the imports;
this holds the calls, which a callable handed down could still send up.

Every call made while the inbox's task applies the event is recorded (`sys.setprofile`): from the nearest frame
of a product module to a function of another product module, imports and the tenant-event delivery task aside.
Measured (see docs/architecture.md): a one-time purchase makes 21 distinct such calls outside `core` (38 with
`core`), a subscription's first checkout 16 (30); the ceilings hold the path from growing unnoticed. A compiled
statement's first run on a connection (`core.statements`) builds its queryset once, which is not part of any one
event's path.
"""

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from billing.models import Payment
from tests.e2e.test_payment_webhooks import _complete
from tests.test_floor_plan import FLOOR

OK = "https://app.example.com/ok"
# Distinct cross-module call sites outside `core` while the event is applied, as measured. Was 24 and 19 (35 and 30
# counting `core`; 8fc175e: 18 outside, 34 all): the checkout handler finds its payment itself, under the row lock
# its transition takes, and checks the account on the row (no `lookups.payment_for`, no second read, no encrypted
# filter value); the payment facts are built in one frame; the payment's and the session's tenant events are
# rendered and recorded by one `events_record` call; the change feed names the customer's version key alone
# (`entitlements.cache.Keys.structure_version_of`, no call into `projects`).
# 20 since billing controls: the resolver hands what it attaches of the customer's own (thresholds, recharge marks,
# spend caps) to `entitlements.attach.structure_attach`, one call (the resolver had reached the 600-line floor).
# 21 and 16 since the journal: the payment's transition posts its entries (`billing.services.journal`), one call.
ONE_TIME_CALL_SITES = 21
SUBSCRIPTION_CALL_SITES = 16
# The same, counting the calls into `core` (the inbox's claim and lock, ids, the log context). Was 28 and 24: the
# key's lock is taken and released by one `core.locks.lock_taken` block, not `lock_try` and `lock_release`. Then
# 27 and 23; now 36 and 29: the hottest reads run as compiled statements, so nine (six) calls the ORM used to take
# (which this count does not see) are calls into `core.statements`: the settings, features, plan sources and state
# of the recompute, the session's payment and open checkout session, the payment's purchases and one-time prices,
# the inbox's due look. Then 39 and 31, while the payment's and the session's `save(update_fields=…)` and the
# purchase's `create` were compiled writes (`core.statements`); then 36 and 29: they are the ORM's again. Now 38
# and 30 with the billing-controls call and the journal's above.
ONE_TIME_ALL_CALL_SITES = 38
SUBSCRIPTION_ALL_CALL_SITES = 30


def _module(frame: Any) -> str | None:
    name = frame.f_globals.get("__name__", "")
    return name if name.split(".")[0] in FLOOR else None


def _under(frame: Any, function: str) -> bool:
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False


@contextmanager
def _calls() -> Iterator[list[tuple[str, str, str, str]]]:
    """(caller module, caller function, callee module, callee function) of every call between two product
    modules made by the inbox's processing task, in order."""
    calls: list[tuple[str, str, str, str]] = []

    def profile(frame: Any, event: str, _: Any) -> None:
        if event != "call" or frame.f_code.co_name == "<module>":
            return
        callee = _module(frame)
        if callee is None:
            return
        caller_frame = frame.f_back
        while caller_frame is not None and _module(caller_frame) is None:
            caller_frame = caller_frame.f_back
        if caller_frame is None:
            return
        caller = _module(caller_frame)
        if caller == callee or not _under(frame, "process_stripe_event") or _under(frame, "deliver_event"):
            return
        if _under(frame, "_compile") and _under(frame, "_compiled"):
            return  # a statement's first run on a connection builds its queryset (`core.statements`): not per event
        calls.append((str(caller), caller_frame.f_code.co_name, callee, frame.f_code.co_name))

    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(None)


def _app(module: str) -> str:
    return module.split(".")[0]


def _first_before_siblings(stripe_emulator: Any, stripe_webhooks: Any, pay: Callable[[], None]) -> list[Any]:
    """Pays with every webhook held, then delivers `checkout.session.completed` first, recording its path,
    then the rest. Returns the calls recorded."""
    from celery import current_app

    current_app.finalize()  # Celery's own lazy set-up is not the event's path
    held: list[tuple[str, bytes, Any]] = []
    stripe_emulator.webhooks.sender = lambda url, body, headers: held.append((url, body, headers)) or 200
    pay()
    stripe_emulator.flush_webhooks()
    types = [json.loads(body)["type"] for _, body, _ in held]
    first = held.pop(types.index("checkout.session.completed"))
    with _calls() as calls:
        stripe_webhooks.send(*first)
    for delivery in held:
        stripe_webhooks.send(*delivery)
    return calls


def _assert_one_way(calls: list[tuple[str, str, str, str]]) -> None:
    crossings = [(caller, callee) for caller, _, callee, _ in calls if _app(caller) != _app(callee)]
    upward = [(c, d) for c, d in crossings if FLOOR[_app(d)] > FLOOR[_app(c)]]
    assert upward == []
    # The inbox hands the event to one billing handler, and billing alone reaches entitlements and events.
    from_inbox = {callee for caller, callee in crossings if _app(caller) == "webhooks"}
    assert {m for m in from_inbox if _app(m) == "billing"} == {
        "billing.handlers.checkout_session",
        "billing.handlers.event",
    }
    assert {_app(m) for m in from_inbox} <= {"billing", "core", "projects"}
    assert {_app(c) for c, d in crossings if _app(d) in ("entitlements", "events")} <= {
        "billing",
        "entitlements",
    }
    assert {_app(c) for c, d in crossings if _app(d) == "events"} == {"billing"}


def _call_sites(calls: list[tuple[str, str, str, str]]) -> set[tuple[str, str, str, str]]:
    return {call for call in calls if "core" not in (_app(call[0]), _app(call[2]))}


def test_a_one_time_checkout_goes_inbox_billing_then_entitlements_and_events_never_back_up(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    created: dict[str, Any] = {}

    def pay() -> None:
        created.update(
            api.post(
                "/api/v1/payments",
                {
                    "customer": "user-1",
                    "price": "credits-1000",
                    "flow": "checkout",
                    "success_url": OK,
                    "cancel_url": OK,
                },
                key=tenant_a.key,
            ).json()
        )
        _complete(stripe_emulator, created["stripe_checkout_session_id"])

    calls = _first_before_siblings(stripe_emulator, stripe_webhooks, pay)

    assert Payment.objects.get(pk=created["id"]).status == "succeeded"
    _assert_one_way(calls)
    apps = {_app(module) for call in calls for module in (call[0], call[2])}
    # `projects` is no longer entered: the change feed names the customer's version key without the project's.
    assert apps == {"core", "stripe_gateway", "entitlements", "events", "billing", "webhooks"}
    assert len(_call_sites(calls)) <= ONE_TIME_CALL_SITES
    assert len(set(calls)) <= ONE_TIME_ALL_CALL_SITES


def test_a_subscription_checkout_goes_inbox_billing_then_entitlements_and_events_never_back_up(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    created: dict[str, Any] = {}

    def pay() -> None:
        created.update(
            api.post(
                "/api/v1/checkout/subscription",
                {"customer": "user-1", "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
                key=tenant_a.key,
            ).json()
        )
        _complete(stripe_emulator, created["stripe_session_id"])

    calls = _first_before_siblings(stripe_emulator, stripe_webhooks, pay)

    assert Payment.objects.get(pk=created["payment"]).status == "succeeded"
    _assert_one_way(calls)
    assert len(_call_sites(calls)) <= SUBSCRIPTION_CALL_SITES
    assert len(set(calls)) <= SUBSCRIPTION_ALL_CALL_SITES
