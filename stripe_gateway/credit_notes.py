"""Stripe's credit notes (`/v1/credit_notes`), called through a project's gateway, and Stripe's reason for refusing
one (its message and the parameter it names), which the caller reports as the request's mistake."""

from typing import Any

import stripe

from core.errors import ApiError
from stripe_gateway.gateway import StripeGateway


def credit_note_create(gateway: StripeGateway, params: dict[str, Any], *, idem: str) -> dict[str, Any]:
    """`POST /v1/credit_notes`: a credit note of an open or paid invoice (a refund, a balance credit …), under the
    caller's key, so a retry whose answer was lost is Stripe's replay, not a second note."""
    return gateway.call_dict(lambda c: c.v1.credit_notes.create(params, {"idempotency_key": idem}))


def credit_note_preview(gateway: StripeGateway, params: dict[str, Any]) -> dict[str, Any]:
    """`GET /v1/credit_notes/preview`: the credit note `params` would create, nothing created."""
    return gateway.call_dict(lambda c: c.v1.credit_notes.preview(params))


def credit_note_void(gateway: StripeGateway, credit_note_id: str, *, idem: str) -> dict[str, Any]:
    """`POST /v1/credit_notes/{id}/void`: final, under the caller's key (as `invoice_void`)."""
    return gateway.call_dict(
        lambda c: c.v1.credit_notes.void_credit_note(credit_note_id, {}, {"idempotency_key": idem})
    )


def credit_note_retrieve(gateway: StripeGateway, credit_note_id: str) -> dict[str, Any]:
    return gateway.call_dict(lambda c: c.v1.credit_notes.retrieve(credit_note_id))


def refusal_reason(exc: ApiError) -> tuple[str, str | None]:
    """Stripe's own message of a request it refused, and the parameter it names (None: none); the gateway's
    message for anything else."""
    cause = exc.__cause__
    if isinstance(cause, stripe.StripeError):
        return str(cause.user_message or cause), (str(getattr(cause, "param", "") or "") or None)
    return str(exc), None
