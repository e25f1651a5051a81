"""Stripe's `checkout.session.*` events: a Checkout Session of one of our payments completed, expired, or its
delayed payment settled."""

import logging
from typing import Any

from django.db import transaction

from billing import statements
from billing.handlers.event import StripeEventIn
from billing.handlers.lookups import invoice_intent_link_told
from billing.models import Payment
from billing.services.payment_transitions import payment_apply_checkout, payment_transition
from core.context import subjects_note
from stripe_gateway.gateway import PLATFORM_ACCOUNT

logger = logging.getLogger(__name__)


def _payment_of(event: StripeEventIn, session: dict[str, Any], *, lock: bool = False) -> Payment | None:
    """The payment a session is about (with its project and customer; `lock`: under its row lock, in the caller's
    transaction): by the session's id, which we record when we create it, else by our metadata (a session whose
    id was not recorded yet). Only a payment of a project billed through the event's Stripe account qualifies
    (checked on the row read: the platform's projects hold no key of their own)."""
    payment = None
    for by, value in (
        ("stripe_checkout_session_id", session.get("id")),
        ("pk", (session.get("metadata") or {}).get("tollgate_payment")),
    ):
        found = statements.SESSION_PAYMENT_BY[by, lock].first(value=value) if value else None
        if found is not None and (
            not found.project.stripe_secret_key
            if event.account == PLATFORM_ACCOUNT
            else found.project_id == event.account
        ):
            payment = found
            break
    if payment is not None:
        if payment.customer.project_id == payment.project_id:
            payment.customer.project = payment.project
        subjects_note(
            project=payment.project.slug,
            customer=payment.customer.external_id,
            payment=payment.pk,
            reference=payment.reference,
        )
    return payment


def checkout_session_settled(event: StripeEventIn) -> None:
    """`completed`, `expired`, `async_payment_succeeded`: the payment takes the session's outcome."""
    session = event.data_object
    with transaction.atomic():  # one read of the payment, under the row lock its transition takes
        payment = _payment_of(event, session, lock=True)
        if payment is None:
            logger.info("Checkout session %s is not ours; ignored.", session.get("id"))
            return
        if not payment.stripe_checkout_session_id:
            Payment.objects.filter(pk=payment.pk, stripe_checkout_session_id="").update(
                stripe_checkout_session_id=session["id"]
            )
            payment.stripe_checkout_session_id = session["id"]
        payment = payment_apply_checkout(payment=payment, stripe_session=session, locked=True)
    if payment.stripe_invoice_id and not payment.stripe_payment_intent_id:
        invoice_intent_link_told(event, payment.stripe_invoice_id)


def checkout_session_async_payment_failed(event: StripeEventIn) -> None:
    session = event.data_object
    payment = _payment_of(event, session)
    if payment is None:
        logger.info("Checkout session %s is not ours; ignored.", session.get("id"))
        return
    payment_transition(payment=payment, allowed_from=Payment.OPEN_STATUSES, status=Payment.Status.FAILED)
