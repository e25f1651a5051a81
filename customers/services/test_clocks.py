"""Test clock writes: create, refresh, advance and delete a project's Stripe test clock.

Stripe first, then our row, outside every transaction: a refusal (ours, checked first, or Stripe's) leaves
nothing on either side. Creations and advances carry idempotency keys made from our clock id (and the target
time), so a retried call never makes a second clock or a second advance; Stripe takes no key on DELETE, where
a clock already gone counts as deleted. Only projects whose Stripe key is a test key have clocks (403 else).

Stripe advances a clock asynchronously: it answers `advancing`, renews what fell due, sends the events, and
turns `ready`. Tollgate stores each answer and re-reads a clock that is not `ready` when it is asked for it.
"""

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, Forbidden, InvalidRequest, NotFound, ProviderError, RateLimited
from core.idempotency import Operation
from core.ids import new_id
from core.serializers import api_time
from customers.models import TestClock
from customers.selectors import clock_customer_ids, clock_get
from projects.models import Project
from projects.versions import project_version_bump
from stripe_gateway.gateway import StripeGateway, from_timestamp, gateway_for, idempotency_key
from stripe_gateway.ownership import refuse_held_first_elsewhere

logger = logging.getLogger(__name__)


def _test_mode_gateway(project: Project) -> StripeGateway:
    """The project's Stripe gateway, refused (403) unless its key is a test key: live mode has no clocks."""
    gateway = gateway_for(project)
    if not gateway.test_mode:
        raise Forbidden(
            "Test clocks exist only in Stripe's test mode, and this project's Stripe key is a live key.",
            code="test_mode_only",
        )
    return gateway


def _clock_write_gateway(project: Project, clock: TestClock) -> StripeGateway:
    """The gateway every write to the clock at Stripe (advance, delete) goes through: the test-mode one, and a
    404, as for any clock not the project's, on a row copied from another project's clock (adopted before
    adoption respected ownership), whose move or deletion would move or delete that project's customers."""
    gateway = _test_mode_gateway(project)
    refuse_held_first_elsewhere(clock, project=project)
    return gateway


def _timestamp(value: datetime) -> int:
    return int(value.timestamp())


def _stripe_fields(stripe_clock: dict[str, Any]) -> dict[str, Any]:
    """Our row's fields from Stripe's clock."""
    advancing = (stripe_clock.get("status_details") or {}).get("advancing") or {}
    return {
        "name": stripe_clock.get("name") or "",
        "frozen_time": from_timestamp(stripe_clock["frozen_time"]),
        "status": stripe_clock["status"],
        "advancing_to": from_timestamp(advancing.get("target_frozen_time")),
        "deletes_after": from_timestamp(stripe_clock["deletes_after"]),
    }


def clock_snapshot(clock: TestClock) -> dict[str, Any]:
    return {
        "name": clock.name,
        "frozen_time": api_time(clock.frozen_time),
        "status": clock.status,
        "stripe_test_clock_id": clock.stripe_test_clock_id,
    }


def clock_for_customer(*, project: Project, test_clock_id: str) -> TestClock:
    """The project's clock a customer is to be created on: 403 outside test mode, 404 for a clock that is not
    the project's, 409 for one Stripe no longer advances (`internal_failure`)."""
    _test_mode_gateway(project)
    clock = clock_get(project=project, test_clock_id=test_clock_id, param="test_clock")
    if clock.status == TestClock.Status.INTERNAL_FAILURE:
        raise Conflict(
            "Stripe failed to advance this test clock; it can only be deleted.",
            code="test_clock_failed",
            param="test_clock",
        )
    return clock


def clock_create(
    *,
    project: Project,
    actor: Actor,
    frozen_time: datetime,
    name: str = "",
    operation: Operation | None = None,
) -> TestClock:
    """Creates the Stripe test clock at `frozen_time` (the past or the future, as Stripe allows), then its
    row. Customers created on it (`customer_upsert(test_clock=…)`) live at its time. A retry of the same
    `operation` sends the same key (one clock at Stripe) and answers the clock its first attempt saved."""
    gateway = _test_mode_gateway(project)
    if frozen_time.timestamp() < 0:
        raise InvalidRequest(
            "frozen_time must be after 1970-01-01T00:00:00Z.", code="invalid_parameter", param="frozen_time"
        )
    clock_id = operation.object_id("tclk") if operation else new_id("tclk")
    if operation and (done := TestClock.objects.filter(pk=clock_id, project=project).first()) is not None:
        return done
    stripe_clock = gateway.test_clock_create(
        frozen_time=_timestamp(frozen_time), name=name, idem=idempotency_key("test-clock", clock_id, "create")
    )
    with transaction.atomic():
        clock = TestClock.objects.create(
            id=clock_id,
            project=project,
            stripe_test_clock_id=stripe_clock["id"],
            **_stripe_fields(stripe_clock),
        )
        audit_record(
            actor=actor,
            action="test_clock.created",
            target=clock,
            after=clock_snapshot(clock),
            project=project,
        )
    return clock


def _apply(clock: TestClock, stripe_clock: dict[str, Any]) -> TestClock:
    """Stores Stripe's answer on the row (the clock only moves forward, so the latest answer is the truth)."""
    fields = _stripe_fields(stripe_clock)
    changed = [name for name, value in fields.items() if getattr(clock, name) != value]
    if changed:
        for name in changed:
            setattr(clock, name, fields[name])
        clock.save(update_fields=[*changed, "updated_at"])
    if "frozen_time" in changed:
        # Its customers' entitlements are judged at its time (`customer_now`): cached answers of them are stale,
        # even where no Stripe event is about them (a grant or a credit lot expiring on the clock).
        project_version_bump(project_id=clock.project_id)
    return clock


def _forget(clock: TestClock) -> None:
    """Our row of a clock Stripe deleted: its customers (deleted at Stripe with it, and unlinked by Stripe's
    `customer.deleted` events) are on no clock any more."""
    with transaction.atomic():
        clock.delete()


def clock_refresh(*, clock: TestClock) -> TestClock:
    """The clock as Stripe has it now, re-read only while it is not `ready` (an advance in progress, or
    failed) or once past `deletes_after`: a clock Stripe deleted on its own then is gone here too (404)."""
    if clock.status == TestClock.Status.READY and timezone.now() < clock.deletes_after:
        return clock
    stripe_clock = gateway_for(clock.project).test_clock_retrieve(clock.stripe_test_clock_id)
    if stripe_clock.get("deleted"):
        clock_id = clock.pk
        _forget(clock)
        raise NotFound(f"No such test clock: {clock_id!r}.")
    with transaction.atomic():
        return _apply(clock, stripe_clock)


def clock_advance(*, project: Project, actor: Actor, clock: TestClock, frozen_time: datetime) -> TestClock:
    """Moves the clock forward to `frozen_time`: Stripe renews, invoices and retries what falls due for the
    clock's customers by then, and sends the events. Refused: 400 for a time not after the clock's (or past
    Stripe's limit, two intervals of the clock's shortest subscription), 409 while an advance is in progress
    or after one failed. Answers the clock as Stripe then has it (`advancing`, or `ready` when done)."""
    gateway = _clock_write_gateway(project, clock)
    clock = clock_refresh(clock=clock)
    if clock.status == TestClock.Status.ADVANCING:
        raise Conflict(
            "The test clock is still advancing; advance it again once its status is ready.",
            code="test_clock_advancing",
        )
    if clock.status == TestClock.Status.INTERNAL_FAILURE:
        raise Conflict(
            "Stripe failed to advance this test clock; it can only be deleted.", code="test_clock_failed"
        )
    if frozen_time <= clock.frozen_time:
        raise InvalidRequest(
            "frozen_time must be after the clock's current frozen_time "
            f"({api_time(clock.frozen_time)}): a clock only moves forward.",
            code="invalid_parameter",
            param="frozen_time",
        )
    target = _timestamp(frozen_time)
    before = clock_snapshot(clock)
    stripe_clock = gateway.test_clock_advance(
        clock.stripe_test_clock_id,
        frozen_time=target,
        idem=idempotency_key("test-clock", clock.pk, "advance", str(target)),
    )
    with transaction.atomic():
        clock = _apply(clock, stripe_clock)
        audit_record(
            actor=actor,
            action="test_clock.advanced",
            target=clock,
            before=before,
            after={**clock_snapshot(clock), "advancing_to": api_time(frozen_time)},
            project=project,
        )
    try:
        # Done already (the emulator finishes before answering; Stripe often within the second)?
        return clock_refresh(clock=clock)
    except (ProviderError, RateLimited):
        # The advance is made and audited: a failed look at its progress does not undo that. The tenant gets
        # the clock as Stripe answered the advance (`advancing`) and polls it.
        logger.warning("Could not re-read test clock %s after its advance.", clock.pk)
        return clock


def clock_delete(*, project: Project, actor: Actor, clock: TestClock) -> None:
    """Deletes the clock at Stripe, which deletes its customers there (their subscriptions end; Stripe's
    events mirror that here, and unlink each customer, whose next purchase creates a new Stripe customer),
    then our row; its customers stay, on no clock."""
    gateway = _clock_write_gateway(project, clock)
    gateway.test_clock_delete(clock.stripe_test_clock_id)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="test_clock.deleted",
            target=clock,
            before={**clock_snapshot(clock), "customers": clock_customer_ids(clock=clock)},
            project=project,
        )
        clock.delete()


def clock_adopt(
    *, project: Project, actor: Actor, stripe_clock: dict[str, Any], dry_run: bool = False
) -> tuple[TestClock | None, str]:
    """The project's row of a Stripe test clock that already exists (adopting a Stripe account: its customers
    on it are adopted onto this row), so advancing it through Tollgate moves them: "created" (with
    `dry_run`, would be), else "unchanged" (Stripe's answer stored on it all the same). Nothing is written to
    Stripe."""
    clock = TestClock.objects.filter(project=project, stripe_test_clock_id=stripe_clock["id"]).first()
    if clock is not None:
        if not dry_run:
            with transaction.atomic():
                _apply(clock, stripe_clock)
        return clock, "unchanged"
    if dry_run:
        return None, "created"
    with transaction.atomic():
        clock, created = TestClock.objects.get_or_create(
            project=project,
            stripe_test_clock_id=stripe_clock["id"],
            defaults=_stripe_fields(stripe_clock),
        )
        if created:
            audit_record(
                actor=actor,
                action="test_clock.adopted",
                target=clock,
                after=clock_snapshot(clock),
                project=project,
            )
    return clock, "created" if created else "unchanged"
