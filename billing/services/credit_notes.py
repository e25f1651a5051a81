"""Credit notes of invoices: issued and voided at Stripe by a tenant (`credit_note_create`, `credit_note_void`), and
their mirror, applied in Stripe's order from its answers and its `credit_note.*` events (`credit_note_apply`).

Like the invoice corrections (billing.services.invoice_corrections), each write is decided on Stripe's invoice or
credit note as it is now, audited in a transaction of its own before it is sent (so a process that dies after
Stripe acted leaves the request on record), and sent under a Stripe idempotency key of the caller's operation (a
retry with the same `Idempotency-Key` continues the first attempt: Stripe replays its answer, one credit note
whatever was lost); a call without one has a key of its own. Stripe refusing a credit note (more than the invoice
has left, amounts that do not add up) is the caller's mistake: a 400 with Stripe's reason. The tenant events
`credit_note.created` and `credit_note.voided` are the mirror's, once per credit note, whoever issued it.
"""

from functools import partial
from typing import Any

from django.db import IntegrityError, transaction

from billing.models import CreditNote, Invoice
from billing.representations import CreditNoteOutput
from billing.services.invoice_corrections import live_invoice, write_key
from billing.services.journal import journal_credit_note
from core.actors import Actor
from core.audit import already_requested, audit_record
from core.errors import ApiError, Conflict, InvalidRequest
from core.idempotency import Operation
from customers.models import Customer
from customers.services.customers import customer_for_stripe
from events.services.record import event_record
from stripe_gateway import credit_notes as stripe_credit_notes
from stripe_gateway.gateway import StripeGateway, gateway_for, stripe_account_of, stripe_id

# A credit note only moves forward: issued → void (final).
CREDIT_NOTE_RANK = {"issued": 0, "void": 1}
# The invoice statuses Stripe credits.
CREDITABLE = ("open", "paid")
# Our input names for the ones Stripe names differently in its refusals.
_PARAM_NAMES = {"invoice_line_item": "invoice_line"}


class InvoiceNotMirrored(Exception):
    """A credit note of one of our customers whose invoice has no mirror yet (its events are on their way)."""


# -- the mirror ------------------------------------------------------------------------------------------------


def credit_note_apply(
    *, account: str, stripe_credit_note: dict[str, Any], event_created: int, force: bool = False
) -> CreditNote | None:
    """Applies Stripe's credit note to its mirror (created on first sight) when it is at least as new as the
    mirror (`force`: a fresh read from Stripe, applied unless the mirror is already void). Returns None for
    credit notes not ours; raises InvoiceNotMirrored for one of ours whose invoice is not mirrored yet."""
    customer = customer_for_stripe(
        account=account, stripe_customer_id=stripe_id(stripe_credit_note.get("customer"))
    )
    if customer is None:
        return None
    stripe_invoice_id = stripe_id(stripe_credit_note.get("invoice"))
    invoice = Invoice.objects.filter(project=customer.project_id, stripe_invoice_id=stripe_invoice_id).first()
    if invoice is None:
        raise InvoiceNotMirrored(f"Invoice {stripe_invoice_id} is not mirrored yet.")
    apply = partial(
        _credit_note_mirror,
        customer=customer,
        invoice=invoice,
        stripe_credit_note=stripe_credit_note,
        event_created=event_created,
        force=force,
    )
    try:
        return apply()
    except IntegrityError:  # created concurrently by another event of the same credit note: apply again
        return apply()


def _credit_note_mirror(
    *,
    customer: Customer,
    invoice: Invoice,
    stripe_credit_note: dict[str, Any],
    event_created: int,
    force: bool,
) -> CreditNote:
    project = customer.project
    fields = _credit_note_fields(stripe_credit_note, invoice=invoice)
    with transaction.atomic():
        note = (
            CreditNote.objects.select_for_update(of=("self",))
            .filter(project=project, stripe_credit_note_id=stripe_credit_note["id"])
            .first()
        )
        status_before = note.status if note is not None else None
        if note is None:
            # No savepoint: a credit note created meanwhile fails the whole block, and credit_note_apply applies
            # again.
            note = CreditNote.objects.create(
                project=project,
                invoice=invoice,
                customer=customer,
                stripe_credit_note_id=stripe_credit_note["id"],
                stripe_event_created=event_created,
                **fields,
            )
        elif credit_note_is_newer(note, stripe_credit_note, event_created, force=force):
            changed = {name: value for name, value in fields.items() if getattr(note, name) != value}
            if event_created > note.stripe_event_created:
                changed["stripe_event_created"] = event_created
            if changed:  # an apply that changes nothing writes nothing (updated_at: the last change)
                for name, value in changed.items():
                    setattr(note, name, value)
                note.save(update_fields=[*changed, "updated_at"])
        note.project, note.customer = project, customer
        journal_credit_note(note)
        # Once per credit note, under its row lock. One first seen void was issued before it was voided: both
        # are announced.
        if status_before is None:
            event_record(project=project, type="credit_note.created", data_object=_credit_note_object(note))
        if note.status == CreditNote.Status.VOID and status_before != CreditNote.Status.VOID:
            event_record(project=project, type="credit_note.voided", data_object=_credit_note_object(note))
    return note


def credit_note_is_newer(
    note: CreditNote, stripe_credit_note: dict[str, Any], event_created: int, *, force: bool = False
) -> bool:
    incoming = CREDIT_NOTE_RANK.get(str(stripe_credit_note.get("status") or "issued"), 0)
    held = CREDIT_NOTE_RANK.get(note.status, 0)
    if incoming != held:
        return incoming > held
    return force or event_created >= note.stripe_event_created


def _credit_note_object(note: CreditNote) -> dict[str, Any]:
    """The `data.object` of a credit note event: its API representation."""
    return dict(CreditNoteOutput(note).data)


def _credit_note_fields(stripe_credit_note: dict[str, Any], *, invoice: Invoice) -> dict[str, Any]:
    """The mirror's columns that Stripe's credit note decides."""
    refunded = sum(int(r.get("amount_refunded") or 0) for r in stripe_credit_note.get("refunds") or [])
    post = int(stripe_credit_note.get("post_payment_amount") or 0)
    out_of_band = int(stripe_credit_note.get("out_of_band_amount") or 0)
    # Stripe gives out the post-payment amount exactly as refunds + balance credit + out of band (it refuses any
    # other split), and names the balance transaction without its amount: what is left is the balance credit,
    # read without asking Stripe for the transaction.
    credited = post - refunded - out_of_band if stripe_credit_note.get("customer_balance_transaction") else 0
    return {
        "number": stripe_credit_note.get("number") or "",
        "status": stripe_credit_note.get("status") or CreditNote.Status.ISSUED,
        "type": stripe_credit_note.get("type") or "",
        "currency": stripe_credit_note.get("currency") or invoice.currency,
        "amount": int(stripe_credit_note.get("amount") or 0),
        "subtotal": int(stripe_credit_note.get("subtotal") or 0),
        "total": int(stripe_credit_note.get("total") or 0),
        "pre_payment_amount": int(stripe_credit_note.get("pre_payment_amount") or 0),
        "post_payment_amount": post,
        "refund_amount": refunded,
        "credit_amount": credited,
        "out_of_band_amount": out_of_band,
        "reason": stripe_credit_note.get("reason") or "",
        "memo": stripe_credit_note.get("memo") or "",
        "lines": _credit_note_lines(stripe_credit_note, invoice=invoice),
    }


def _credit_note_lines(stripe_credit_note: dict[str, Any], *, invoice: Invoice) -> list[dict[str, Any]]:
    """A credit note's lines as Tollgate shows them: each invoice line credited named by its index in
    `Invoice.lines`."""
    index_of = {
        line.get("stripe_line_id"): i for i, line in enumerate(invoice.lines) if line.get("stripe_line_id")
    }
    lines = []
    for line in (stripe_credit_note.get("lines") or {}).get("data") or []:
        credited = stripe_id(line.get("invoice_line_item"))
        lines.append(
            {
                "type": line.get("type") or "",
                "description": line.get("description") or "",
                "amount": int(line.get("amount") or 0),
                "quantity": line.get("quantity"),
                "invoice_line": index_of.get(credited) if credited else None,
                "stripe_invoice_line_id": credited or None,
            }
        )
    return lines


# -- issuing and voiding at Stripe -----------------------------------------------------------------------------


def credit_note_create(
    *,
    invoice: Invoice,
    actor: Actor,
    amount: int | None = None,
    lines: list[dict[str, Any]] | None = None,
    refund_amount: int = 0,
    credit_amount: int = 0,
    out_of_band_amount: int = 0,
    reason: str = "",
    memo: str = "",
    operation: Operation | None = None,
    audit_reason: str | None = None,
) -> CreditNote:
    """Issues a credit note of the invoice at Stripe: of an `amount`, or of `lines` (each `{invoice_line: index
    in Invoice.lines, quantity | amount}`). What it credits first lowers what is still due; the rest is given
    back exactly as `refund_amount` (to the card that paid) + `credit_amount` (the customer's Stripe balance) +
    `out_of_band_amount` (settled outside Stripe). Only an open or paid invoice is credited (409
    `invoice_not_creditable`); Stripe refusing the amounts is 400 `invalid_request` with its reason. The audit
    row's reason is `audit_reason` (an operator's, in the back office), else the memo."""
    project = invoice.project
    gateway = gateway_for(project)
    live = live_invoice(gateway, invoice)
    status = str(live.get("status") or "")
    # A resumed operation is sent again whatever the invoice is now: its first attempt may have issued the note
    # (Stripe replays that answer under its key) before the invoice changed; if it did not, Stripe refuses.
    if status not in CREDITABLE and not (operation is not None and operation.resumed):
        raise invoice_not_creditable(status)
    params = _create_params(
        live,
        project_id=project.pk,
        amount=amount,
        lines=lines,
        refund_amount=refund_amount,
        credit_amount=credit_amount,
        out_of_band_amount=out_of_band_amount,
        reason=reason,
        memo=memo,
    )
    requested = {
        "amount": amount,
        "lines": lines,
        "refund_amount": refund_amount,
        "credit_amount": credit_amount,
        "out_of_band_amount": out_of_band_amount,
        "reason": reason,
        "operation": operation.identity if operation is not None else None,
    }
    with transaction.atomic():
        # A resumed operation whose first attempt recorded the request is the same request: recorded once.
        if not already_requested("credit_note.requested", invoice.pk, operation, its_own=True):
            audit_record(
                actor=actor,
                action="credit_note.requested",
                target=invoice,
                project=project,
                reason=memo if audit_reason is None else audit_reason,
                before={"status": status, "amount_remaining": int(live.get("amount_remaining") or 0)},
                after=requested,
            )
    idem = write_key("credit-note-create", invoice.stripe_invoice_id, operation)
    try:
        answer = stripe_credit_notes.credit_note_create(gateway, params, idem=idem)
    except ApiError as exc:
        raise _create_refused(gateway, invoice, exc) from exc
    # Event time 0: the events that follow are applied as they would have been.
    note = credit_note_apply(account=stripe_account_of(project), stripe_credit_note=answer, event_created=0)
    if note is None:  # the invoice's customer was checked against Stripe's just above
        raise Conflict("This invoice is not this customer's at Stripe.", code="invoice_not_ours")
    return CreditNote.objects.select_related("customer", "project").get(pk=note.pk)


def credit_note_void(
    *, credit_note: CreditNote, actor: Actor, reason: str = "", operation: Operation | None = None
) -> CreditNote:
    """Voids an issued credit note at Stripe: the invoice owes again what it took off, and a balance credit is
    taken back. Stripe refuses one that refunded money (a refund cannot be taken back) and one that lowered the
    amount due once its invoice is no longer open: 409 `credit_note_not_voidable`, as for a void one."""
    project = credit_note.project
    gateway = gateway_for(project)
    live = stripe_credit_notes.credit_note_retrieve(gateway, credit_note.stripe_credit_note_id)
    if stripe_id(live.get("customer")) != credit_note.customer.stripe_customer_id:
        raise Conflict("This credit note is not this customer's at Stripe.", code="credit_note_not_ours")
    status = str(live.get("status") or "")
    if status == CreditNote.Status.VOID and operation is not None and operation.resumed:
        answer = live  # this operation's first attempt voided it (and audited it); its answer was lost
    elif status != CreditNote.Status.ISSUED:
        raise _not_voidable(f"This credit note is {status}.")
    else:
        with transaction.atomic():
            # A credit note is voided once: any void request recorded is this operation's.
            if not already_requested("credit_note.void_requested", credit_note.pk, operation):
                audit_record(
                    actor=actor,
                    action="credit_note.void_requested",
                    target=credit_note,
                    project=project,
                    reason=reason,
                    before={"status": status},
                    after={"status": CreditNote.Status.VOID.value},
                )
        idem = write_key("credit-note-void", credit_note.stripe_credit_note_id, operation)
        try:
            answer = stripe_credit_notes.credit_note_void(
                gateway, credit_note.stripe_credit_note_id, idem=idem
            )
        except ApiError as exc:
            if exc.code != "provider_invalid_request":
                raise
            raise _not_voidable(stripe_credit_notes.refusal_reason(exc)[0]) from exc
    credit_note_apply(account=stripe_account_of(project), stripe_credit_note=answer, event_created=0)
    return CreditNote.objects.select_related("customer", "project").get(pk=credit_note.pk)


def _create_params(
    live: dict[str, Any],
    *,
    project_id: str,
    amount: int | None,
    lines: list[dict[str, Any]] | None,
    refund_amount: int,
    credit_amount: int,
    out_of_band_amount: int,
    reason: str,
    memo: str,
) -> dict[str, Any]:
    params: dict[str, Any] = {"invoice": live["id"], "metadata": {"tollgate_project": project_id}}
    if amount is not None:
        params["amount"] = amount
    if lines is not None:
        params["lines"] = _stripe_lines(live, lines)
    for name, value in (
        ("refund_amount", refund_amount),
        ("credit_amount", credit_amount),
        ("out_of_band_amount", out_of_band_amount),
    ):
        if value:
            params[name] = value
    if reason:
        params["reason"] = reason
    if memo:
        params["memo"] = memo
    return params


def _stripe_lines(live: dict[str, Any], lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The invoice lines to credit as Stripe names them: Tollgate's index in the invoice's lines (the mirror's
    `Invoice.lines`, in Stripe's order) is the line at that index of Stripe's invoice."""
    stripe_lines = (live.get("lines") or {}).get("data") or []
    sent = []
    for i, line in enumerate(lines):
        index = int(line["invoice_line"])
        if not 0 <= index < len(stripe_lines):
            raise InvalidRequest(
                f"The invoice has no line {index} (it has {len(stripe_lines)}).",
                param=f"lines[{i}][invoice_line]",
            )
        entry: dict[str, Any] = {"type": "invoice_line_item", "invoice_line_item": stripe_lines[index]["id"]}
        for name in ("quantity", "amount"):
            if line.get(name) is not None:
                entry[name] = int(line[name])
        sent.append(entry)
    return sent


def _create_refused(gateway: StripeGateway, invoice: Invoice, exc: ApiError) -> ApiError:
    """What the caller is told of a credit note Stripe did not issue: the invoice changed meanwhile (voided,
    marked uncollectible) is 409 as finding it so; amounts Stripe refuses are the request's mistake (400, with
    Stripe's reason and the parameter it names); anything else is as the gateway reported it."""
    if exc.code != "provider_invalid_request":
        return exc
    now = str(gateway.invoice_retrieve(invoice.stripe_invoice_id).get("status") or "")
    if now not in CREDITABLE:
        return invoice_not_creditable(now)
    message, param = stripe_credit_notes.refusal_reason(exc)
    if param is not None:
        for stripe_name, ours in _PARAM_NAMES.items():
            param = param.replace(f"[{stripe_name}]", f"[{ours}]")
    return InvalidRequest(message, code="invalid_request", param=param)


def invoice_not_creditable(status: str) -> Conflict:
    """The refusal of a credit note on an invoice that is neither open nor paid (409), the API's and the agents'."""
    return Conflict(
        f"Only an open or paid invoice can be credited; this one is {status}.", code="invoice_not_creditable"
    )


def _not_voidable(why: str) -> Conflict:
    return Conflict(f"This credit note cannot be voided: {why}", code="credit_note_not_voidable")
