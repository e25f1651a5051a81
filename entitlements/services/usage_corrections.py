"""Correcting recorded usage: `usage_correct` voids or amends a usage event by the tenant's id, once per correction
id. In one transaction, with the event locked, everything derived from it follows the corrected quantity: the
event itself (so every later sum over events, `meter_totals_rebuild` and the re-rating included, reads it), its
period counter, the credits a credits waterfall paid for its units (credit lots and ledger), the use of the entity
it named, its rolling windows still current, its period's meter totals, the usage thresholds (one the event
had crossed and the corrected use no longer reaches is reported in the answer; its crossing stays recorded, so
re-crossing it later fires nothing again; one an amendment now reaches fires as usage does), the entitlement
cache, the audit log and the tenant event `usage.corrected`. `as_of` history before the correction still answers
what was known then (`history.usage_at` adds corrections made later back).

Stripe's meter is corrected by billing after the commit (`billing.services.meter_corrections`, queued under
`meters.METER_CORRECTION_TASK`) when the event may be at Stripe: a meter event adjustment cancels what it was sent and a
replacement meter event, under the correction's id, carries the amount left. An event Stripe never received
needs nothing: the reporter sends the corrected quantity (or, voided, nothing). Where Stripe can no longer
correct it — its period closed (invoiced), or received more than a day ago (Stripe cancels a meter event only
within 24 hours) — the correction is refused (409 `usage_invoiced`) and nothing changes, unless what the meter
bills of the event is unchanged (credits paid for the difference).
"""

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import Feature, Price, ProductVersion
from catalog.pricing import terms_amount
from catalog.snapshots import price_snapshot
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidRequest, NotFound
from core.serializers import api_time
from entitlements import cache as ent_cache
from entitlements.models import (
    Hold,
    SubscriptionVersion,
    ThresholdCrossing,
    UsageCorrection,
    UsageCounter,
    UsageEvent,
    UsageMeterTotal,
)
from entitlements.selectors import metered_price_of
from entitlements.services.correction_follow import Sent, counter_follow, entity_follow, windows_follow
from entitlements.services.counters import usage_events_of, usage_marks
from entitlements.services.meter_totals import meter_due_now, meter_status_move, meter_totals_add
from entitlements.services.meters import meter_correction_queue, meter_report_queue
from entitlements.services.usage import BACKFILLED, usage_thresholds_announce
from entitlements.snapshot import FeatureEntry, judged_at
from events.services.record import event_record
from projects.models import Project

# Stripe cancels a meter event only within 24 hours of receiving it; an hour is kept for the adjustment to run.
METER_CANCEL_WINDOW = timedelta(hours=23)


def usage_correct(
    *,
    project: Project,
    actor: Actor,
    correction_id: str,
    event_id: str,
    action: str,
    quantity: int | None,
    reason: str,
    invoiced: str = "refuse",
) -> tuple[UsageCorrection, bool]:
    """Voids (`action` "void") or amends (to `quantity`) the project's usage event `event_id`; returns the
    correction and whether it was made now (False: `correction_id` made it before, for the same change).
    404 for an unknown event; 409 `idempotency_id_reused` (the id made another correction),
    `correction_unsupported`, `usage_event_voided`, `usage_invoiced`; 400 `correction_unchanged`. Where Stripe
    has invoiced the event, `invoiced="credit"` corrects it here and adjusts the customer's next invoice by what
    the corrected units change of what its metered price billed, instead of refusing."""
    after = 0 if action == UsageCorrection.Action.VOID else int(quantity or 0)
    made = _made_before(project, correction_id, event_id, action, after)
    if made is not None:
        return made, False
    try:
        with transaction.atomic():
            correction = _correct(project, actor, correction_id, event_id, action, after, reason, invoiced)
    except IntegrityError:  # the same correction id, made by a concurrent request
        made = _made_before(project, correction_id, event_id, action, after)
        if made is None:
            raise
        return made, False
    return correction, True


def _made_before(
    project: Project, correction_id: str, event_id: str, action: str, after: int
) -> UsageCorrection | None:
    made = UsageCorrection.objects.filter(project=project, correction_id=correction_id).first()
    if made is None:
        return None
    if (made.event_id, made.action, made.quantity_after) != (event_id, action, after):
        raise Conflict(
            f"id {correction_id!r} was already used for another correction.",
            code="idempotency_id_reused",
            param="id",
        )
    return made


def _correct(
    project: Project,
    actor: Actor,
    correction_id: str,
    event_id: str,
    action: str,
    after: int,
    reason: str,
    invoiced: str,
) -> UsageCorrection:
    event = (
        usage_events_of(project_id=project.pk, event_ids=[event_id])
        .select_for_update(of=("self",))
        .select_related("customer", "feature")
        .first()
    )
    if event is None:
        raise NotFound(f"No such usage event: {event_id!r}.", code="resource_missing", param="event")
    hold = _supported(event)
    before = event.quantity
    if before == after:
        if action == UsageCorrection.Action.VOID:
            raise Conflict(
                f"Usage event {event_id!r} is voided already.", code="usage_event_voided", param="event"
            )
        raise InvalidRequest(
            f"quantity: usage event {event_id!r} has {before} already.",
            code="correction_unchanged",
            param="quantity",
        )
    now = timezone.now()
    structure = ent_cache.structure_fresh(project=project, external_id=event.customer.external_id)
    entry = structure["features"].get(event.feature.key)
    counter = (  # locked: the use the thresholds are judged on is the one the update changes
        UsageCounter.objects.select_for_update()
        .filter(customer_id=event.customer_id, feature_id=event.feature_id, period_start=event.period_start)
        .first()
        if event.period_start is not None
        else None
    )
    if counter is not None and counter.used + after - before < counter.held:
        raise Conflict(
            f"Usage event {event_id!r} cannot be corrected now: {counter.held} units of the period are held, more "
            "than its use would be; end the holds first.",
            code="correction_unsupported",
            param="event",
        )
    earlier = UsageCorrection.objects.filter(project=project, usage_event_id=event.pk)
    at_stripe = (
        event.meter_status == UsageEvent.MeterStatus.REPORTED
        or (
            event.meter_status == UsageEvent.MeterStatus.PENDING
            and (
                event.meter_attempts > 0
                or (event.meter_next_attempt_at is not None and event.meter_next_attempt_at > now)
            )
        )
        or earlier.exclude(meter=UsageCorrection.Meter.NONE).exists()
    )
    delta = after - before
    judged = judged_at(structure, now)
    # Units an event Stripe's meter never held gains in a period Stripe invoiced are billed on the next invoice, as
    # the meter would take them into a period already billed.
    unsent = event.meter_status == UsageEvent.MeterStatus.SKIPPED and event.meter_error != BACKFILLED
    # The price an invoice adjustment would be at: read only where Stripe may have billed the event.
    gains = unsent and after > before
    price = (
        metered_price_of(customer=event.customer, feature_id=event.feature_id) if at_stripe or gains else None
    )
    gains_unsent = gains and price is not None
    refusal = _invoiced(event, counter, judged, now) if at_stripe or gains_unsent else None
    followed = counter_follow(
        project=project,
        event=event,
        structure=structure,
        entry=entry,
        counter=counter,
        after=after,
        judged=judged,
        now=now,
        hold=hold,
        open_period=counter is not None and counter.period_end > judged,
    )
    billed_before, billed_after = before - event.covered, followed.billed(after)
    billed = billed_after - billed_before
    adjustment: tuple[int, str] | None = None
    if billed == 0:
        at_stripe = False  # what Stripe's meter bills of it is unchanged: credits paid for the difference
    elif refusal is not None:
        if invoiced != "credit":
            raise refusal  # rolls back what followed
        adjustment = invoice_adjustment(event, billed, price)
        at_stripe = False  # Stripe's meter is left as it billed; the next invoice is adjusted instead
    UsageEvent.objects.filter(pk=event.pk, timestamp=event.timestamp).update(
        quantity=after, covered=followed.covered
    )
    if event.meter_status and event.period_start is not None and billed:
        key = (event.customer_id, event.feature_id, event.period_start, event.meter_status)
        meter_totals_add(project_id=project.pk, changes={key: billed})
    if at_stripe and event.meter_status != UsageEvent.MeterStatus.PENDING:
        # The correction now answers for what Stripe's meter holds of it: pending until it is corrected there.
        meter_status_move(
            event_ids=[event.pk],
            status=UsageEvent.MeterStatus.PENDING,
            meter_next_attempt_at=None,
            meter_error="",
        )
    elif adjustment is not None:
        if event.meter_status == UsageEvent.MeterStatus.SKIPPED and billed_after > 0:
            # Skipped, it now has units the next invoice bills (Stripe invoiced its period, so it is never sent):
            # counted with what Stripe billed, as a later correction of it adjusts from there.
            meter_status_move(event_ids=[event.pk], status=UsageEvent.MeterStatus.REPORTED, meter_error="")
    elif unsent and billed_before == 0 and billed_after > 0:
        # Skipped at 0 units to bill (never sent), it has units to bill now: reported as recorded usage is (the
        # reporter decides again whether anyone is billed for it).
        meter_due_now(event_ids=[event.pk], now=now)
        transaction.on_commit(partial(meter_report_queue, project_id=project.pk))
    uncrossed: list[str] = []
    if (
        counter is not None
        and entry is not None
        and counter.period_start.timestamp() == entry.get("period_start")
    ):
        uncrossed = _thresholds_follow(project, event, entry, followed.counted_before, followed.counted_after)
    if entry is not None:
        windows_follow(
            event, entry.get("windows", ()), delta, judged, held_in=hold.windows if hold is not None else None
        )
    entity_follow(event, entry, delta, judged, now, hold)
    correction = UsageCorrection.objects.create(
        project=project,
        correction_id=correction_id,
        **_of_event(event),
        action=action,
        quantity_before=before,
        quantity_after=after,
        reason=reason,
        thresholds_uncrossed=uncrossed,
        covered_before=event.covered,
        covered_after=followed.covered,
        credits_returned=followed.credits_returned,
        credits_feature_id=followed.credits_feature,
        moved=list(followed.moved),
        meter=(
            UsageCorrection.Meter.PENDING
            if at_stripe
            else UsageCorrection.Meter.INVOICED
            if adjustment is not None
            else UsageCorrection.Meter.NONE
        ),
        meter_attempts_seen=event.meter_attempts,
        adjustment_amount=adjustment[0] if adjustment else None,
        adjustment_currency=adjustment[1] if adjustment else "",
        adjustment_status=(
            UsageCorrection.Adjustment.PENDING
            if adjustment and adjustment[0]
            else UsageCorrection.Adjustment.NONE
        ),
    )
    audit_record(
        actor=actor,
        action=f"usage_event.{'voided' if action == UsageCorrection.Action.VOID else 'amended'}",
        target=correction,
        reason=reason,
        before={"event": event.event_id, "quantity": before},
        after={"event": event.event_id, "quantity": after},
        project=project,
    )
    event_record(
        project=project,
        type="usage.corrected",
        data_object=usage_correction_body(
            correction, customer=event.customer.external_id, feature=event.feature.key
        ),
    )
    ent_cache.usage_changed(project_id=project.pk, external_ids=[event.customer.external_id])
    if at_stripe or correction.adjustment_status:
        transaction.on_commit(partial(meter_correction_queue, correction_id=correction.pk))
    for sent in followed.sent:
        _allowance_record(correction, sent, credits_feature_id=followed.credits_feature)
    if followed.moved:  # later events with units to bill now
        transaction.on_commit(partial(meter_report_queue, project_id=project.pk))
    return correction


def _of_event(event: UsageEvent) -> dict[str, Any]:
    """The fields a correction keeps of the event it corrects (the event by value: its table is partitioned)."""
    return {
        "customer_id": event.customer_id,
        "feature_id": event.feature_id,
        "usage_event_id": event.pk,
        "event_id": event.event_id,
        "event_timestamp": event.timestamp,
        "event_created_at": event.created_at,
        "period_start": event.period_start,
    }


def _allowance_record(correction: UsageCorrection, sent: Sent, *, credits_feature_id: str | None) -> None:
    """A later event Stripe's meter holds, whose units credits paid the allowance `correction` freed pays now:
    recorded as an `allowance` correction of it (its quantity unchanged, its covered units fewer), which adds
    them to Stripe's meter as a meter event of its own (`billing.services.meter_corrections`), so a later
    correction of the event cancels it with the rest of what the event was sent as."""
    other = sent.event
    units = sent.covered_before - sent.covered_after
    made = UsageCorrection.objects.create(
        project_id=correction.project_id,
        correction_id=f"{correction.pk}:{other.pk}",
        **_of_event(other),
        action=UsageCorrection.Action.ALLOWANCE,
        quantity_before=other.quantity,
        quantity_after=other.quantity,
        reason=f"Correction {correction.correction_id} freed allowance: it pays {units} units credits had paid.",
        covered_before=sent.covered_before,
        covered_after=sent.covered_after,
        credits_returned=sent.credits,
        credits_feature_id=credits_feature_id,
        meter=UsageCorrection.Meter.PENDING,
        meter_attempts_seen=other.meter_attempts,
    )
    transaction.on_commit(partial(meter_correction_queue, correction_id=made.pk))


def _supported(event: UsageEvent) -> Hold | None:
    """409 `correction_unsupported` for an event whose effects are not only its quantity and what follows from it
    (`correction_follow`): one of a feature that is not metered, a release, the report of a hold still open (the
    hold answers for its units: release or confirm it). The hold an ended hold's report reports the use of: its
    credits and windows are the hold's (`correction_follow`)."""
    why, hold = "", None
    if event.feature.type != Feature.Type.METERED or event.kind == UsageEvent.Kind.RELEASE:
        why = f"it is a {event.kind} of a {event.feature.type} feature; only metered usage is corrected"
    elif "hold" in (event.properties or {}) and event.kind == UsageEvent.Kind.CONSUME:
        hold = (
            Hold.objects.filter(project_id=event.project_id, hold_id=event.properties["hold"])
            .only("hold_id", "status", "windows", "entity_windows", "credit_cost")
            .first()
        )
        if hold is None or hold.status == Hold.Status.ACTIVE:
            why = "it reports the use of a hold still open (release or confirm the hold instead)"
    if why:
        raise Conflict(
            f"Usage event {event.event_id!r} cannot be corrected: {why}.",
            code="correction_unsupported",
            param="event",
        )
    return hold


def _invoiced(
    event: UsageEvent, counter: UsageCounter | None, judged: datetime, now: datetime
) -> Conflict | None:
    """The 409 `usage_invoiced` when Stripe's meter can no longer correct an event it may hold (None: it can): its
    period is over (Stripe invoices a period's usage as it ends), or Stripe received it more than a day ago."""
    if counter is not None and counter.period_end <= judged:
        return Conflict(
            f"Usage event {event.event_id!r} was billed by Stripe in the period that ended "
            f"{api_time(counter.period_end)}: its meter can no longer be corrected.",
            code="usage_invoiced",
            param="event",
        )
    reported = event.meter_reported_at
    if reported is not None and reported < now - METER_CANCEL_WINDOW:
        return Conflict(
            f"Usage event {event.event_id!r} reached Stripe's meter at {api_time(reported)}: Stripe cancels a meter "
            "event only within 24 hours of receiving it.",
            code="usage_invoiced",
            param="event",
        )
    return None


def invoice_adjustment(event: UsageEvent, delta: int, price: Price | None) -> tuple[int, str]:
    """(amount, currency) the customer's next invoice is adjusted by for an invoiced event corrected by `delta`
    units: its metered price's amount for the period's billed units after, less before (negative: a credit); at the
    terms that billed the period (`_billed_terms`; `price`'s terms now, the customer's metered price of the
    feature, when no subscription state covers it). 409 `usage_invoiced` when `price` is None (nothing to adjust
    an invoice against)."""
    if price is None:
        raise Conflict(
            f"Usage event {event.event_id!r} was invoiced by Stripe, and the customer has no live subscription "
            "billing the feature's meter whose next invoice could be adjusted.",
            code="usage_invoiced",
            param="invoiced",
        )
    terms = _billed_terms(event, price) or price_snapshot(price)
    billed = 0
    if event.period_start is not None:
        totals = UsageMeterTotal.objects.filter(
            customer_id=event.customer_id,
            feature_id=event.feature_id,
            period_start=event.period_start,
            meter_status=UsageEvent.MeterStatus.REPORTED,
        )
        billed = int(totals.values_list("quantity", flat=True).first() or 0)
    after = max(billed + delta, 0)
    return terms_amount(terms, after) - terms_amount(terms, billed), terms["currency"]


def _billed_terms(event: UsageEvent, price: Price) -> dict[str, Any] | None:
    """The terms Stripe billed the event's period at: the subscription's metered item for the feature's meter in
    that period, at the product version it was on then (a version keeps its prices' terms as they were when it was
    published: subscribers keep the price they bought, whatever the price's terms are now). None when no
    subscription state of the customer covers the event's time."""
    items = (
        SubscriptionVersion.objects.filter(
            customer_id=event.customer_id,
            current_period_start__lte=event.timestamp,
            current_period_end__gt=event.timestamp,
        )
        .order_by("-recorded_at")
        .values_list("items", flat=True)
        .first()
    )
    for item in items or []:
        if not item.get("metered") or item.get("version") is None:
            continue
        key = (
            Price.objects.filter(pk=item["price"], meter_id=event.feature_id)
            .values_list("key", flat=True)
            .first()
        )
        frozen = (
            ProductVersion.objects.filter(product_id=item["product"], number=item["version"])
            .values_list("prices", flat=True)
            .first()
        )
        for terms in frozen or []:
            if key is not None and terms.get("key") == key:
                return dict(terms)
    return None


def _thresholds_follow(
    project: Project, event: UsageEvent, entry: FeatureEntry, before: int, after: int
) -> list[str]:
    """The current period's usage thresholds after a correction from `before` to `after` units: an amendment up
    announces those it now reaches (as usage does, once per period); a correction down returns the labels of
    those crossed before that the use no longer reaches (their crossings stay: re-crossing fires nothing)."""
    if after > before:
        usage_thresholds_announce(
            project=project,
            customer_id=event.customer_id,
            external_id=event.customer.external_id,
            feature_key=event.feature.key,
            entry=entry,
            before=before,
            after=after,
        )
        return []
    period_start = datetime.fromtimestamp(entry["period_start"], UTC)
    crossed = set(
        ThresholdCrossing.objects.filter(
            customer_id=event.customer_id, feature_id=event.feature_id, period_start=period_start
        ).values_list("threshold", flat=True)
    )
    return [label for label, mark in usage_marks(entry) if after < mark <= before and label in crossed]


def usage_correction_body(correction: UsageCorrection, *, customer: str, feature: str) -> dict[str, Any]:
    """A correction as the API and the tenant event `usage.corrected` show it."""
    return {
        "id": correction.correction_id,
        "object": "usage_correction",
        "event": correction.event_id,
        "customer": customer,
        "feature": feature,
        "action": correction.action,
        "quantity_before": correction.quantity_before,
        "quantity_after": correction.quantity_after,
        "period_start": api_time(correction.period_start) if correction.period_start else None,
        "reason": correction.reason,
        "thresholds_uncrossed": list(correction.thresholds_uncrossed),
        "credits": (
            {
                "feature": correction.credits_feature.key if correction.credits_feature else None,
                "covered_before": correction.covered_before,
                "covered_after": correction.covered_after,
                "returned": correction.credits_returned,
                "later_units": sum(int(move["units"]) for move in correction.moved),
                "later_returned": sum(int(move["credits"]) for move in correction.moved),
            }
            if correction.covered_before
            or correction.covered_after
            or correction.credits_returned
            or correction.moved
            else None
        ),
        "stripe_meter": {
            "status": correction.meter,
            "adjusted_at": api_time(correction.meter_adjusted_at) if correction.meter_adjusted_at else None,
            "error": correction.meter_error or None,
        },
        "invoice_adjustment": (
            {
                "amount": correction.adjustment_amount,
                "currency": correction.adjustment_currency,
                "status": correction.adjustment_status or "none",
                "invoice_item": correction.adjustment_item or None,
            }
            if correction.adjustment_amount is not None
            else None
        ),
        "created_at": api_time(correction.created_at),
    }
