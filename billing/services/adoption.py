"""Adopting an existing Stripe account into a project: `adoption_start` records the request (validated) and queues
it; `adoption_execute` runs it — the adoption point first (Stripe's clock and newest event), then the catalog
(`adoption_catalog`), the customers and their subscriptions, invoices and payments (`adoption_billing`), every
read paced under the account's read limit and counted — and records the report. A dry run reads the same and
writes nothing but its own run record; a second run finds everything adopted and writes nothing.

The command (`stripe_adopt`), the platform API (`POST /projects/{id}/adoptions`) and the back office all call
these two functions.
"""

import logging
import time
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import AdoptionRun
from billing.services import adoption_billing, adoption_catalog
from billing.services.adoption_mapping import customer_key_parse, mapping_parse
from billing.services.adoption_state import Adoption, CountingReader
from core.actors import Actor
from core.audit import audit_record
from core.errors import ApiError, Conflict
from projects.models import Project
from stripe_gateway.gateway import (
    PLATFORM_ACCOUNT,
    from_timestamp,
    gateway_for,
    platform_gateway,
    stripe_account_of,
)
from stripe_gateway.read_limit import STRIPE_READS_PER_SECOND

logger = logging.getLogger(__name__)

# A run still running after this long lost its worker (killed mid-run; its redelivered task finds it taken): the
# next request records it failed, so the project can be adopted again (a run changes nothing twice).
ADOPTION_ABANDONED_AFTER = timedelta(hours=6)


def adoption_start(
    *,
    project: Project,
    actor: Actor,
    customer_key: Any,
    mapping: Any,
    dry_run: bool = False,
    queue: bool = True,
    reason: str = "",
) -> AdoptionRun:
    """Records an adoption of the project's Stripe account (400 `invalid_mapping` for a bad key or mapping; 409
    `adoption_running` while another one of the project is pending or running, unless it was abandoned) and,
    with `queue`, has a worker run it once this commits (the command runs it itself)."""
    key = customer_key_parse(customer_key)
    parsed = mapping_parse(mapping)
    AdoptionRun.objects.filter(
        project=project,
        status__in=(AdoptionRun.Status.PENDING, AdoptionRun.Status.RUNNING),
        created_at__lt=timezone.now() - ADOPTION_ABANDONED_AFTER,
    ).update(
        status=AdoptionRun.Status.FAILED,
        error="abandoned: no result after 6 hours",
        finished_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            run = AdoptionRun.objects.create(
                project=project,
                dry_run=dry_run,
                customer_key=key.as_json(),
                mapping=mapping,
                requested_by={"type": actor.type, "id": actor.id, "repr": actor.repr},
            )
            audit_record(
                actor=actor,
                action="adoption.requested",
                target=run,
                project=project,
                reason=reason,
                after={"dry_run": dry_run, "customer_key": key.as_json(), "products": len(parsed.products)},
            )
            if queue:
                transaction.on_commit(partial(_queue, run.pk))
    except IntegrityError as exc:
        raise Conflict(
            "An adoption of this project is already pending or running; wait for it to finish.",
            code="adoption_running",
        ) from exc
    return run


def _queue(run_id: str) -> None:
    from billing.tasks import adoption_run

    adoption_run.delay(run_id)


def adoption_execute(*, run_id: str) -> AdoptionRun:
    """Runs a pending adoption (a run already taken, by a redelivered task, is left alone) and records its
    report. Never inside a transaction: every step reads Stripe."""
    if not AdoptionRun.objects.filter(pk=run_id, status=AdoptionRun.Status.PENDING).update(
        status=AdoptionRun.Status.RUNNING
    ):
        return AdoptionRun.objects.get(pk=run_id)
    run = AdoptionRun.objects.select_related("project").get(pk=run_id)
    project = run.project
    account = stripe_account_of(project)
    gateway = gateway_for(project) if account != PLATFORM_ACCOUNT else platform_gateway()
    requested = run.requested_by or {}
    actor = Actor(
        type=requested.get("type") or Actor.system().type,
        id=requested.get("id") or "",
        repr=requested.get("repr") or "stripe adoption",
    )
    state = Adoption(
        project=project,
        actor=actor,
        reader=CountingReader(account, gateway),
        mapping=mapping_parse(run.mapping),
        customer_key=customer_key_parse(run.customer_key),
        dry_run=run.dry_run,
    )
    started = time.monotonic()
    try:
        _adoption_point(state, run)
        pending = adoption_catalog.features_adopt(state)
        products = adoption_catalog.products_adopt(state, pending)
        adoption_catalog.prices_adopt(state, products)
        adoption_catalog.coupons_adopt(state)
        adoption_billing.customers_adopt(state)
        adoption_billing.subscriptions_adopt(state)
        adoption_billing.schedules_adopt(state)
        adoption_billing.invoices_adopt(state)
        adoption_billing.charges_adopt(state)
        run.status = AdoptionRun.Status.COMPLETED
    except ApiError as exc:  # Stripe unavailable, or the mapping refused by the catalog: recorded, run again
        run.status = AdoptionRun.Status.FAILED
        run.error = f"{exc.code}: {exc.message}"
    except Exception as exc:  # recorded before it propagates, so the project is not left with a running run
        run.status = AdoptionRun.Status.FAILED
        run.error = f"internal error: {exc.__class__.__name__}"
        _finish(run, state, started)
        raise
    _finish(run, state, started)
    return run


def _adoption_point(state: Adoption, run: AdoptionRun) -> None:
    """Stripe's clock before any object is read: every state read after it is at least as new, so an event
    created before it describes a state the adoption has read (or one older)."""
    state.marker = state.reader.stripe_now()
    newest = state.reader.newest_event()
    state.clocks = {str(clock["id"]): clock for clock in state.reader.test_clocks()}
    state.clock_times = {clock_id: int(clock["frozen_time"]) for clock_id, clock in state.clocks.items()}
    run.stripe_marker = state.marker
    run.adopted_at = from_timestamp(state.marker)
    run.newest_event_id = str(newest["id"]) if newest else ""
    run.newest_event_created = int(newest["created"]) if newest else None
    run.save(update_fields=["stripe_marker", "adopted_at", "newest_event_id", "newest_event_created"])


def _finish(run: AdoptionRun, state: Adoption, started: float) -> None:
    seconds = round(time.monotonic() - started, 3)
    run.stripe_reads = state.reader.reads
    run.report = {
        **state.report.as_json(),
        "dry_run": run.dry_run,
        "seconds": seconds,
        "stripe_reads": state.reader.reads,
        "read_limit_per_second": STRIPE_READS_PER_SECOND,
    }
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save()
        audit_record(
            actor=state.actor,
            action="adoption.dry_run" if run.dry_run else "adoption.completed",
            target=run,
            project=run.project,
            after={
                "status": run.status,
                "subscriptions": dict(state.report.counts.get("subscriptions") or {}),
                "stripe_reads": run.stripe_reads,
                "seconds": seconds,
            },
        )
    logger.info(
        "Adoption %s of project %s: %s in %.1f s, %d Stripe reads.",
        run.pk,
        run.project.slug,
        run.status,
        seconds,
        run.stripe_reads,
    )
