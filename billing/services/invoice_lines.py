"""Editing a draft invoice's lines at Stripe before it is finalized, by a tenant or an operator: a line added (an
invoice item of an amount, put on the draft), changed or removed (a line of an invoice item; a subscription's own
lines follow their subscription, and are changed by changing it).

Like the other corrections of an invoice (billing.services.invoice_corrections), each edit is decided on Stripe's
invoice as it is now (the mirror may lag), audited in a transaction of its own before anything is sent (so a
process that dies after Stripe acted leaves the request on record), and sent under a Stripe idempotency key of the
caller's operation: a retry with the same `Idempotency-Key` continues the first attempt (Stripe replays its answer:
one line added, whatever was lost), and a call without one has a key of its own. Lines are named by Stripe's id of
the line (`il_…`), which a change keeps. Stripe's invoice, read after the write, moves the mirror's lines and
totals; the `invoice.updated` events that follow change nothing more.
"""

from typing import Any

from django.db import transaction

from billing.models import Invoice
from billing.services.invoice_corrections import live_invoice, write_key
from billing.services.invoices import invoice_refetch_and_apply, line_invoice_item
from core.actors import Actor
from core.audit import already_requested, audit_record
from core.errors import ApiError, Conflict, InvalidRequest, NotFound
from core.idempotency import Operation
from stripe_gateway import invoice_items as stripe_items
from stripe_gateway.credit_notes import refusal_reason
from stripe_gateway.errors import StripeObjectMissing
from stripe_gateway.gateway import StripeGateway, gateway_for, stripe_account_of

ADD, UPDATE, REMOVE = (
    "invoice.line_add_requested",
    "invoice.line_update_requested",
    "invoice.line_remove_requested",
)


def invoice_line_add(
    *,
    invoice: Invoice,
    actor: Actor,
    amount: int,
    description: str,
    reason: str = "",
    operation: Operation | None = None,
) -> Invoice:
    """Adds a line of `amount` (minor units, in the invoice's currency; negative: a credit) to a draft invoice at
    Stripe, as an invoice item on the draft. Any other status is 409 `invoice_not_draft`."""
    gateway = gateway_for(invoice.project)
    live = _live_draft(gateway, invoice, operation)
    _audit(
        invoice,
        ADD,
        actor=actor,
        reason=reason,
        operation=operation,
        before={"status": live.get("status"), "total": int(live.get("total") or 0)},
        after={"amount": amount, "description": description},
    )
    params = {
        "customer": invoice.customer.stripe_customer_id,
        "invoice": invoice.stripe_invoice_id,
        "amount": amount,
        "currency": live.get("currency") or invoice.currency,
        "description": description,
        "metadata": {"tollgate_project": invoice.project_id},
    }
    try:
        stripe_items.invoice_item_create(
            gateway, params, idem=write_key("invoice-line-add", invoice.stripe_invoice_id, operation)
        )
    except ApiError as exc:
        raise _refused(gateway, invoice, exc) from exc
    return _mirrored(gateway, invoice)


def invoice_line_update(
    *,
    invoice: Invoice,
    line_id: str,
    actor: Actor,
    amount: int | None = None,
    description: str | None = None,
    reason: str = "",
    operation: Operation | None = None,
) -> Invoice:
    """Changes the `amount` and/or `description` of a draft's line of an invoice item at Stripe (the line keeps
    its id and place). 404 `invoice_line_not_found`; 409 `invoice_line_not_editable` for a subscription's line,
    `invoice_not_draft` once the invoice is finalized."""
    gateway = gateway_for(invoice.project)
    live = _live_draft(gateway, invoice, operation)
    line = _line(gateway, live, line_id)
    if line is None:
        raise _line_not_found(line_id)
    item = _invoice_item(line)
    changes: dict[str, Any] = {}
    if amount is not None:
        changes["amount"] = amount
    if description is not None:
        changes["description"] = description
    _audit(
        invoice,
        UPDATE,
        actor=actor,
        reason=reason,
        operation=operation,
        before={
            "line": line_id,
            "amount": int(line.get("amount") or 0),
            "description": line.get("description"),
        },
        after={"line": line_id, **changes},
    )
    try:
        stripe_items.invoice_item_update(
            gateway,
            item,
            changes,
            idem=write_key("invoice-line-update", invoice.stripe_invoice_id, operation),
        )
    except ApiError as exc:
        raise _refused(gateway, invoice, exc) from exc
    return _mirrored(gateway, invoice)


def invoice_line_remove(
    *, invoice: Invoice, line_id: str, actor: Actor, reason: str = "", operation: Operation | None = None
) -> Invoice:
    """Removes a draft's line of an invoice item at Stripe (the invoice item is deleted). A resumed `operation`
    whose first attempt removed it answers the invoice as it is."""
    gateway = gateway_for(invoice.project)
    live = _live_draft(gateway, invoice, operation)
    line = _line(gateway, live, line_id)
    if line is None:
        if (
            operation is not None
            and operation.resumed
            and already_requested(REMOVE, invoice.pk, operation, its_own=True)
        ):
            return _mirrored(
                gateway, invoice
            )  # this operation's first attempt removed it; its answer was lost
        raise _line_not_found(line_id)
    item = _invoice_item(line)
    _audit(
        invoice,
        REMOVE,
        actor=actor,
        reason=reason,
        operation=operation,
        before={
            "line": line_id,
            "amount": int(line.get("amount") or 0),
            "description": line.get("description"),
        },
        after={"line": line_id},
    )
    try:
        stripe_items.invoice_item_delete(
            gateway, item, idem=write_key("invoice-line-remove", invoice.stripe_invoice_id, operation)
        )
    except StripeObjectMissing as exc:  # deleted meanwhile by another request
        raise _line_not_found(line_id) from exc
    except ApiError as exc:
        raise _refused(gateway, invoice, exc) from exc
    return _mirrored(gateway, invoice)


def _live_draft(gateway: StripeGateway, invoice: Invoice, operation: Operation | None) -> dict[str, Any]:
    """Stripe's invoice as it is now, checked to be this customer's and a draft. A resumed operation goes on
    whatever the invoice is now: its first attempt may have made the edit (Stripe replays that answer under its
    key) before the invoice was finalized; if it did not, Stripe refuses."""
    live = live_invoice(gateway, invoice)
    status = str(live.get("status") or "")
    if status != "draft" and not (operation is not None and operation.resumed):
        raise invoice_not_draft(status)
    return live


def _line(gateway: StripeGateway, live: dict[str, Any], line_id: str) -> dict[str, Any] | None:
    """The invoice's line of Stripe id `line_id` (None: none), from the invoice read, else its further pages."""
    lines = live.get("lines") or {}
    found = next((line for line in lines.get("data") or [] if line.get("id") == line_id), None)
    if found is None and lines.get("has_more"):
        found = next(
            (line for line in stripe_items.invoice_lines(gateway, live["id"]) if line.get("id") == line_id),
            None,
        )
    return found


def _invoice_item(line: dict[str, Any]) -> str:
    item = line_invoice_item(line)
    if not item:
        raise Conflict(
            "This line bills a subscription's item: it follows the subscription (change the subscription, or "
            "credit the invoice once it is finalized). Only a line of an invoice item can be changed or removed.",
            code="invoice_line_not_editable",
        )
    return item


def _audit(
    invoice: Invoice,
    action: str,
    *,
    actor: Actor,
    reason: str,
    operation: Operation | None,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    with transaction.atomic():
        # A resumed operation whose first attempt recorded the request is the same request: recorded once.
        if not already_requested(action, invoice.pk, operation, its_own=True):
            audit_record(
                actor=actor,
                action=action,
                target=invoice,
                project=invoice.project,
                reason=reason,
                before=before,
                after={**after, "operation": operation.identity if operation is not None else None},
            )


def _mirrored(gateway: StripeGateway, invoice: Invoice) -> Invoice:
    """The mirror moved to Stripe's invoice read now, stamped with Stripe's clock as of the read: the events of
    the edit (and of any before it) describe no newer state, and are not applied over it."""
    invoice_refetch_and_apply(
        account=stripe_account_of(invoice.project),
        gateway=gateway,
        stripe_invoice_id=invoice.stripe_invoice_id,
    )
    return Invoice.objects.select_related("customer", "project").get(pk=invoice.pk)


def _refused(gateway: StripeGateway, invoice: Invoice, exc: ApiError) -> ApiError:
    """What the caller is told of an edit Stripe refused: the invoice finalized meanwhile is 409 as finding it so;
    anything else Stripe refuses is the request's mistake (400, with Stripe's reason)."""
    if exc.code != "provider_invalid_request":
        return exc
    now = str(gateway.invoice_retrieve(invoice.stripe_invoice_id).get("status") or "")
    if now != "draft":
        return invoice_not_draft(now)
    message, _param = refusal_reason(exc)
    return InvalidRequest(message, code="invalid_request")


def invoice_not_draft(status: str) -> Conflict:
    return Conflict(
        f"Only a draft invoice's lines can be edited; this one is {status}. A finalized invoice is corrected by a "
        "credit note (POST /invoices/{id}/credit_notes) or voided.",
        code="invoice_not_draft",
    )


def _line_not_found(line_id: str) -> NotFound:
    return NotFound(f"The invoice has no line {line_id}.", code="invoice_line_not_found")
