"""Corrections of an invoice made at Stripe by a tenant or an operator: voiding an open (or uncollectible) invoice,
and marking an open one uncollectible (a bad debt Stripe stops collecting).

Each is decided on Stripe's invoice as it is now (the mirror may lag); the request is audited (with the caller,
the reason and the status it found) in a transaction of its own before anything is sent, so a process that dies
after Stripe acted leaves the request on record; then it is sent under a Stripe idempotency key of the caller's
operation (a retry with the same `Idempotency-Key` continues the first attempt: Stripe replays its answer; a call
without one has a key of its own). Stripe's answer moves the mirror: an invoice's status only moves forward
(`invoices.INVOICE_RANK`), so the events that follow change nothing and no older one reverts it. Stripe refusing
because the invoice changed meanwhile (paid, voided by another request) is the same 409 as finding it so. The
tenant events `invoice.voided` and `invoice.marked_uncollectible` are the mirror's (`invoices.invoice_apply`),
once per invoice, whoever made the change (the Stripe dashboard too).
"""

import uuid
from typing import Any

from django.db import transaction

from billing.models import Invoice
from billing.services.invoices import invoice_apply
from core.actors import Actor
from core.audit import already_requested, audit_record
from core.errors import ApiError, Conflict
from core.idempotency import Operation
from stripe_gateway.gateway import StripeGateway, gateway_for, idempotency_key, stripe_account_of, stripe_id

# What each correction may start from, at Stripe, and its audit action.
_FROM = {"void": ("open", "uncollectible"), "uncollectible": ("open",)}
_ACTION = {"void": "invoice.void_requested", "uncollectible": "invoice.mark_uncollectible_requested"}
_WRITE = {"void": "invoice-void", "uncollectible": "invoice-mark-uncollectible"}


def invoice_void(
    *, invoice: Invoice, actor: Actor, reason: str = "", operation: Operation | None = None
) -> Invoice:
    """Voids the invoice at Stripe: it is no longer owed, and Stripe stops collecting it. Only an open or
    uncollectible invoice can be voided (409 `invoice_not_voidable`): a draft is deleted or finalized, a paid
    invoice is refunded. A resumed `operation` whose first attempt voided it answers the invoice as it is."""
    return _corrected(invoice, "void", actor=actor, reason=reason, operation=operation)


def invoice_mark_uncollectible(
    *, invoice: Invoice, actor: Actor, reason: str = "", operation: Operation | None = None
) -> Invoice:
    """Marks an open invoice uncollectible at Stripe (a bad debt: Stripe stops its retries; it can still be paid
    or voided later). Any other status is 409 `invoice_not_open`."""
    return _corrected(invoice, "uncollectible", actor=actor, reason=reason, operation=operation)


def _corrected(
    invoice: Invoice, target: str, *, actor: Actor, reason: str, operation: Operation | None
) -> Invoice:
    project = invoice.project
    gateway = gateway_for(project)
    live = live_invoice(gateway, invoice)
    status = str(live.get("status") or "")
    if status == target and operation is not None and operation.resumed:
        answer = live  # this operation's first attempt made the change (and audited it); its answer was lost
    elif status not in _FROM[target]:
        raise _refused(target, status)
    else:
        with transaction.atomic():
            # A resumed operation whose first attempt recorded the request and died before sending it is the
            # same request: recorded once.
            if not already_requested(_ACTION[target], invoice.pk, operation):
                audit_record(
                    actor=actor,
                    action=_ACTION[target],
                    target=invoice,
                    project=project,
                    reason=reason,
                    before={"status": status},
                    after={"status": target},
                )
        answer = _sent(gateway, invoice, target, operation)
    # Event time 0: Stripe's answer moves the status forward only; an equal one changes nothing here, and the
    # events that follow are applied as they would have been.
    invoice_apply(account=stripe_account_of(project), stripe_invoice=answer, event_created=0)
    return Invoice.objects.select_related("customer", "project").get(pk=invoice.pk)


def live_invoice(gateway: StripeGateway, invoice: Invoice) -> dict[str, Any]:
    """Stripe's invoice as it is now, which every correction is decided on, checked to be the mirror's customer's:
    an invoice Stripe says is someone else's is not touched (409 `invoice_not_ours`)."""
    live = gateway.invoice_retrieve(invoice.stripe_invoice_id)
    if stripe_id(live.get("customer")) != invoice.customer.stripe_customer_id:
        raise Conflict("This invoice is not this customer's at Stripe.", code="invoice_not_ours")
    return live


def write_key(write: str, object_id: str, operation: Operation | None) -> str:
    """A correction's Stripe idempotency key: its operation's (the operation's retries continue it), else one of
    this call's own (its SDK retries are one write; an earlier call's saved failure is never replayed to it)."""
    if operation is not None:
        return operation.stripe_key(write)
    return idempotency_key(write, object_id, uuid.uuid4().hex)


def _sent(
    gateway: StripeGateway, invoice: Invoice, target: str, operation: Operation | None
) -> dict[str, Any]:
    """The correction sent to Stripe, under its `write_key`."""
    idem = write_key(_WRITE[target], invoice.stripe_invoice_id, operation)
    try:
        if target == "void":
            return gateway.invoice_void(invoice.stripe_invoice_id, idem=idem)
        return gateway.invoice_mark_uncollectible(invoice.stripe_invoice_id, idem=idem)
    except ApiError as exc:
        if exc.code != "provider_invalid_request":
            raise
        # Refused: the invoice changed since it was read (paid, or corrected by another request meanwhile).
        now = str(gateway.invoice_retrieve(invoice.stripe_invoice_id).get("status") or "")
        if now in _FROM[target]:
            raise
        raise _refused(target, now) from exc


def _refused(target: str, status: str) -> Conflict:
    if target == "void":
        return Conflict(
            f"Only an open or uncollectible invoice can be voided; this one is {status}. A draft is finalized or "
            "deleted at Stripe; a paid invoice is refunded (POST /payments/{id}/refund).",
            code="invoice_not_voidable",
        )
    return Conflict(
        f"Only an open invoice can be marked uncollectible; this one is {status}.", code="invoice_not_open"
    )
