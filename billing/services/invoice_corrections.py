"""Corrections of an invoice made at Stripe by a tenant or an operator: voiding an open (or uncollectible) invoice,
and marking an open one uncollectible (a bad debt Stripe stops collecting).

Each is decided on Stripe's invoice as it is now (the mirror may lag), sent under a Stripe idempotency key of the
invoice's own (every attempt to void an invoice is one write, whatever the caller's `Idempotency-Key`: a retry
whose answer was lost gets Stripe's replay), and applied to the mirror from Stripe's answer: an invoice's status
only moves forward (`invoices.INVOICE_RANK`), so the events that follow change nothing and no older one reverts
it. Audited once per invoice with the caller and the reason. The tenant events `invoice.voided` and
`invoice.marked_uncollectible` are the mirror's (`invoices.invoice_apply`), once per invoice, whoever made the
change (the Stripe dashboard too).
"""

from django.db import transaction

from billing.models import Invoice
from billing.services.invoices import invoice_apply
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict
from core.idempotency import Operation
from core.models import AuditLogEntry
from stripe_gateway.gateway import gateway_for, idempotency_key, stripe_account_of, stripe_id

# What each correction may start from, at Stripe, and its audit action.
_FROM = {"void": ("open", "uncollectible"), "uncollectible": ("open",)}
_ACTION = {"void": "invoice.voided", "uncollectible": "invoice.marked_uncollectible"}


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
    live = gateway.invoice_retrieve(invoice.stripe_invoice_id)
    if stripe_id(live.get("customer")) != invoice.customer.stripe_customer_id:
        # The mirror's customer is the tenant's: an invoice Stripe says is someone else's is not touched.
        raise Conflict("This invoice is not this customer's at Stripe.", code="invoice_not_ours")
    status = str(live.get("status") or "")
    if status == target and operation is not None and operation.resumed:
        answer = live  # this operation's first attempt made the change; its answer was lost
    elif status not in _FROM[target]:
        raise _refused(target, status)
    elif target == "void":
        answer = gateway.invoice_void(
            invoice.stripe_invoice_id, idem=idempotency_key("invoice", invoice.stripe_invoice_id, "void")
        )
    else:
        answer = gateway.invoice_mark_uncollectible(
            invoice.stripe_invoice_id,
            idem=idempotency_key("invoice", invoice.stripe_invoice_id, "mark-uncollectible"),
        )
    with transaction.atomic():
        # Event time 0: Stripe's answer moves the status forward only; an equal one changes nothing here, and
        # the events that follow are applied as they would have been.
        mirrored = invoice_apply(account=stripe_account_of(project), stripe_invoice=answer, event_created=0)
        corrected = Invoice.objects.select_related("customer", "project").get(pk=invoice.pk)
        action = _ACTION[target]
        # Once per invoice (a correction cannot be made twice): a retry of an attempt that audited it and died
        # before answering audits nothing more. The invoice's row lock (taken by invoice_apply) orders them.
        if (
            mirrored is not None
            and not AuditLogEntry.objects.filter(action=action, target_id=invoice.pk).exists()
        ):
            audit_record(
                actor=actor,
                action=action,
                target=corrected,
                project=project,
                reason=reason,
                # Resumed, Stripe's status is already the new one: the mirror's, as the request found it, was before.
                before={"status": invoice.status if answer is live else status},
                after={"status": corrected.status, "amount_remaining": corrected.amount_remaining},
            )
    return corrected


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
