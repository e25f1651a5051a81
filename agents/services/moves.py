"""Money moves agents ask for, made only once confirmed: a refund of a payment, a credit note of an invoice, a
subscription's cancellation.

Asking (`refund_request`, `credit_note_request`, `subscription_cancel_request`) checks the move as the REST API would, and stores what it
would do (its preview) as a pending `MoveConfirmation` for 15 minutes — nothing moves. Confirming
(`move_confirm`: a key with `can_confirm`, or an operator in the admin) claims it by compare-and-set
(pending → confirmed, not expired), then makes the move through the REST API's own service under an operation
derived from the confirmation id: a retry of a move whose answer was lost continues it, and Stripe makes it once.
Its answer is stored, and every later confirmation answers it again. A move Stripe or our checks refuse is
`failed` with its error; one whose outcome is unknown (a lost answer, Stripe failing) stays confirmed without a
result, and the next confirmation continues it.
"""

from typing import Any

from django.db import transaction
from django.utils import timezone

from agents import selectors
from agents.models import CONFIRMATION_TTL, AgentKey, MoveConfirmation
from billing import selectors as billing_selectors
from billing.models import Subscription
from billing.representations import CreditNoteOutput, PaymentOutput, SubscriptionOutput
from billing.services.credit_notes import CREDITABLE, credit_note_create, invoice_not_creditable
from billing.services.refunds import REFUNDABLE_STATUSES, payment_refund
from billing.services.subscription_cancel import subscription_cancel
from core.actors import Actor
from core.audit import audit_record
from core.errors import ApiError, Conflict, Forbidden, InvalidRequest
from core.idempotency import Operation
from core.locks import lock_taken
from core.serializers import api_time
from projects.models import Project
from stripe_gateway.errors import outcome_unknown

REFUND = "refund_request"
CREDIT_NOTE = "credit_note_request"
SUBSCRIPTION_CANCEL = "subscription_cancel_request"


def move_request_answer(confirmation: MoveConfirmation) -> dict[str, Any]:
    return {
        "confirmation_id": confirmation.pk,
        "status": confirmation.status,
        "preview": confirmation.preview,
        "expires_at": api_time(confirmation.expires_at),
    }


def move_answer(confirmation: MoveConfirmation) -> dict[str, Any]:
    return {
        "confirmation_id": confirmation.pk,
        "tool": confirmation.tool,
        "status": confirmation.status,
        "decided_by": confirmation.decided_by,
        "decided_at": api_time(confirmation.decided_at),
        "result": confirmation.result,
    }


def _move_create(
    *, key: AgentKey, tool: str, arguments: dict[str, Any], preview: dict[str, Any]
) -> dict[str, Any]:
    with transaction.atomic():
        confirmation = MoveConfirmation.objects.create(
            project=key.project,
            agent_key=key,
            tool=tool,
            arguments=arguments,
            preview=preview,
            expires_at=timezone.now() + CONFIRMATION_TTL,
        )
        audit_record(
            actor=key.actor(),
            action="move_confirmation.requested",
            target=confirmation,
            project=key.project,
            after={"tool": tool, "preview": preview},
        )
    return move_request_answer(confirmation)


def refund_request(*, key: AgentKey, payment_id: str, amount: int | None, reason: str) -> dict[str, Any]:
    """A refund of all that is left of a paid payment (or `amount` of it), waiting for its confirmation."""
    payment = billing_selectors.payment_get(project=key.project, payment_id=payment_id)
    if payment.status not in REFUNDABLE_STATUSES or not payment.stripe_payment_intent_id:
        raise Conflict(
            f"Only paid payments can be refunded; this one is {payment.status}.",
            code="payment_not_refundable",
        )
    refundable = payment.amount - payment.amount_refunded
    amount = refundable if amount is None else amount
    if amount <= 0 or amount > refundable:
        raise InvalidRequest(
            f"amount must be between 1 and {refundable}.", code="invalid_amount", param="amount"
        )
    preview = {
        "move": "refund",
        "payment": payment.pk,
        "customer": payment.customer.external_id,
        "amount": amount,
        "currency": payment.currency,
        "payment_amount": payment.amount,
        "refunded_before": payment.amount_refunded,
        "refundable_after": refundable - amount,
        "reason": reason,
    }
    arguments = {"payment": payment.pk, "amount": amount, "reason": reason}
    return _move_create(key=key, tool=REFUND, arguments=arguments, preview=preview)


def credit_note_request(
    *,
    key: AgentKey,
    invoice_id: str,
    amount: int,
    refund_amount: int,
    credit_amount: int,
    out_of_band_amount: int,
    reason: str,
) -> dict[str, Any]:
    """A credit note of `amount` of an open or paid invoice, waiting for its confirmation: what it credits lowers
    what is still due, and the rest is given back as `refund_amount` (to the card) + `credit_amount` (the
    customer's balance) + `out_of_band_amount` (outside Stripe), as `POST /invoices/{id}/credit_notes` takes it.
    Stripe judges the amounts when the move is made (a refusal is the move's stored error)."""
    invoice = billing_selectors.invoice_get(project=key.project, invoice_id=invoice_id)
    if invoice.status not in CREDITABLE:
        raise invoice_not_creditable(invoice.status)
    if amount > invoice.total:
        raise InvalidRequest(
            f"amount must be between 1 and the invoice's total, {invoice.total}.",
            code="invalid_amount",
            param="amount",
        )
    given_back = refund_amount + credit_amount + out_of_band_amount
    if given_back > amount:
        raise InvalidRequest(
            "refund_amount + credit_amount + out_of_band_amount must not exceed amount.",
            code="invalid_amount",
            param="amount",
        )
    preview = {
        "move": "credit_note",
        "invoice": invoice.pk,
        "customer": invoice.customer.external_id,
        "invoice_status": invoice.status,
        "invoice_total": invoice.total,
        "amount_remaining": invoice.amount_remaining,
        "amount": amount,
        "currency": invoice.currency,
        "lowers_amount_due": amount - given_back,
        "refund_amount": refund_amount,
        "credit_amount": credit_amount,
        "out_of_band_amount": out_of_band_amount,
        "reason": reason,
    }
    arguments = {
        "invoice": invoice.pk,
        "amount": amount,
        "refund_amount": refund_amount,
        "credit_amount": credit_amount,
        "out_of_band_amount": out_of_band_amount,
        "reason": reason,
    }
    return _move_create(key=key, tool=CREDIT_NOTE, arguments=arguments, preview=preview)


def subscription_cancel_request(
    *, key: AgentKey, subscription_id: str, at_period_end: bool
) -> dict[str, Any]:
    """A subscription's cancellation (at the period's end, or now), waiting for its confirmation."""
    subscription = billing_selectors.subscription_get(project=key.project, subscription_id=subscription_id)
    if subscription.status in (Subscription.Status.CANCELED, Subscription.Status.INCOMPLETE_EXPIRED):
        raise Conflict("This subscription has already ended.", code="subscription_ended")
    preview = {
        "move": "subscription_cancel",
        "subscription": subscription.pk,
        "customer": subscription.customer.external_id,
        "product": subscription.product.key,
        "status": subscription.status,
        "at_period_end": at_period_end,
        "current_period_end": api_time(subscription.current_period_end),
        "ends_at": api_time(subscription.current_period_end) if at_period_end else "now",
        "cancel_at_period_end_before": subscription.cancel_at_period_end,
    }
    arguments = {"subscription": subscription.pk, "at_period_end": at_period_end}
    return _move_create(key=key, tool=SUBSCRIPTION_CANCEL, arguments=arguments, preview=preview)


def _decided_by(actor: Actor) -> str:
    return f"{actor.type}:{actor.id} {actor.repr}".strip()[:255]


def _refused(confirmation: MoveConfirmation) -> ApiError | None:
    """Why a confirmation that was not claimed cannot be made now (None: it was made, or is being made)."""
    if confirmation.status == MoveConfirmation.Status.PENDING:  # not claimed while pending: it has expired
        MoveConfirmation.objects.filter(pk=confirmation.pk, status=MoveConfirmation.Status.PENDING).update(
            status=MoveConfirmation.Status.EXPIRED
        )
        confirmation.status = MoveConfirmation.Status.EXPIRED
    if confirmation.status == MoveConfirmation.Status.EXPIRED:
        return Conflict("This confirmation has expired: ask for the move again.", code="confirmation_expired")
    if confirmation.status == MoveConfirmation.Status.DECLINED:
        return Conflict(f"This move was declined by {confirmation.decided_by}.", code="confirmation_declined")
    return None


def _stored_error(confirmation: MoveConfirmation) -> ApiError:
    error = (confirmation.result or {}).get("error") or {}
    return ApiError(
        error.get("message"), code=error.get("code") or "move_failed", status_code=error.get("status") or 409
    )


def move_confirm(
    *,
    project: Project,
    confirmation_id: str,
    actor: Actor,
    reason: str = "",
    confirming_key: AgentKey | None = None,
) -> dict[str, Any]:
    """Makes the move `confirmation_id` asked for, once: claimed pending → confirmed (refused when expired or
    declined); a confirmation already made answers its stored result (or its stored error) again.
    `confirming_key`: the agent key confirming (None: an operator); it may never be the key that asked, so no
    key alone moves money — a second key, or a person, confirms."""
    confirmation = selectors.move_confirmation_get(project=project, confirmation_id=confirmation_id)
    if confirming_key is not None and confirmation.agent_key_id == confirming_key.pk:
        raise Forbidden(
            "A key may not confirm a move it asked for: another key allowed to confirm, or a person, does.",
            code="confirm_own_move",
        )
    now = timezone.now()
    with transaction.atomic():
        claimed = MoveConfirmation.objects.filter(
            pk=confirmation.pk, status=MoveConfirmation.Status.PENDING, expires_at__gt=now
        ).update(status=MoveConfirmation.Status.CONFIRMED, decided_by=_decided_by(actor), decided_at=now)
        if claimed:
            confirmation.refresh_from_db()
            audit_record(
                actor=actor,
                action="move_confirmation.confirmed",
                target=confirmation,
                project=project,
                reason=reason,
                before={"status": MoveConfirmation.Status.PENDING},
                after={"status": MoveConfirmation.Status.CONFIRMED, "preview": confirmation.preview},
            )
    if not claimed:
        confirmation.refresh_from_db()
        refused = _refused(confirmation)
        if refused is not None:
            raise refused
    with lock_taken(f"agents:move:{confirmation.pk}") as taken:
        if not taken:
            raise Conflict(
                "This move is being made now: ask again in a moment for its result.",
                code="move_in_progress",
            )
        confirmation.refresh_from_db()  # re-checked under the lock: another confirmation may have made it
        if confirmation.status == MoveConfirmation.Status.FAILED:
            raise _stored_error(confirmation)
        if confirmation.result is None:
            _move_make(confirmation, actor=actor, resumed=not claimed)
    return move_answer(confirmation)


def _move_make(confirmation: MoveConfirmation, *, actor: Actor, resumed: bool) -> None:
    """The move itself, under the confirmation's operation; its answer (or its definite refusal) stored."""
    arguments = confirmation.arguments
    project = confirmation.project
    try:
        if confirmation.tool == REFUND:
            payment = billing_selectors.payment_get(project=project, payment_id=arguments["payment"])
            refunded = payment_refund(
                payment=payment,
                amount=arguments["amount"],
                reason=arguments["reason"],
                actor=actor,
                operation=f"agent:{confirmation.pk}",
            )
            result: dict[str, Any] = dict(PaymentOutput(refunded).data)
        elif confirmation.tool == CREDIT_NOTE:
            note = credit_note_create(
                invoice=billing_selectors.invoice_get(project=project, invoice_id=arguments["invoice"]),
                actor=actor,
                amount=arguments["amount"],
                refund_amount=arguments["refund_amount"],
                credit_amount=arguments["credit_amount"],
                out_of_band_amount=arguments["out_of_band_amount"],
                operation=Operation(identity=f"agent-{confirmation.pk}", resumed=resumed),
                audit_reason=arguments["reason"],
            )
            result = dict(CreditNoteOutput(note).data)
        elif confirmation.tool == SUBSCRIPTION_CANCEL:
            subscription = billing_selectors.subscription_get(
                project=project, subscription_id=arguments["subscription"]
            )
            canceled = subscription_cancel(
                subscription=subscription,
                actor=actor,
                at_period_end=arguments["at_period_end"],
                operation=Operation(identity=f"agent-{confirmation.pk}", resumed=resumed),
            )
            result = dict(SubscriptionOutput(canceled).data)
        else:
            raise ValueError(f"Unknown money move {confirmation.tool!r}.")
    except ApiError as exc:
        if outcome_unknown(exc) or exc.status_code >= 500 or exc.status_code == 429:
            raise  # not known to be refused: the next confirmation continues the same move
        error = {"code": exc.code, "message": exc.message, "status": exc.status_code}
        MoveConfirmation.objects.filter(pk=confirmation.pk, result__isnull=True).update(
            status=MoveConfirmation.Status.FAILED, result={"error": error}
        )
        raise
    MoveConfirmation.objects.filter(pk=confirmation.pk, result__isnull=True).update(result=result)
    confirmation.refresh_from_db()


def move_decline(*, confirmation: MoveConfirmation, actor: Actor, reason: str = "") -> MoveConfirmation:
    """Declines a pending move (nothing moves); a move no longer pending cannot be declined (409)."""
    now = timezone.now()
    with transaction.atomic():
        declined = MoveConfirmation.objects.filter(
            pk=confirmation.pk, status=MoveConfirmation.Status.PENDING
        ).update(status=MoveConfirmation.Status.DECLINED, decided_by=_decided_by(actor), decided_at=now)
        if not declined:
            confirmation.refresh_from_db()
            raise Conflict(
                f"Only a pending move can be declined; this one is {confirmation.status}.",
                code="confirmation_not_pending",
            )
        confirmation.refresh_from_db()
        audit_record(
            actor=actor,
            action="move_confirmation.declined",
            target=confirmation,
            project=confirmation.project,
            reason=reason,
            before={"status": MoveConfirmation.Status.PENDING},
            after={"status": MoveConfirmation.Status.DECLINED},
        )
    return confirmation


def moves_of_key_decline(*, agent_key: AgentKey, actor: Actor) -> int:
    """Declines every move `agent_key` asked for that is still pending (the key is being revoked); how many."""
    pending = MoveConfirmation.objects.filter(agent_key=agent_key, status=MoveConfirmation.Status.PENDING)
    declined = 0
    for confirmation in pending:
        try:
            move_decline(
                confirmation=confirmation, actor=actor, reason="The agent key that asked for it was revoked."
            )
        except Conflict:
            continue  # confirmed or declined meanwhile: its own outcome stands
        declined += 1
    return declined
