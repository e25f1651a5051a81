"""Invoices, invoice line items and invoice payments, wire side (``/v1/invoices``, ``/v1/invoice_payments``)
and the invoice's expand-only fields. The preview of a subscription change (``/v1/invoices/create_preview``)
is the subscriptions' (:mod:`stripe_emulator.subscriptions.responses`)."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.params import in_range, merge_metadata
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.core.store import StripeObject
from stripe_emulator.subscriptions.invoices import InvoicesBackend
from stripe_emulator.subscriptions.invoices.base import STATUSES as INVOICE_STATUSES
from stripe_emulator.tax import automatic_tax_param

COLLECTION_METHODS = ("charge_automatically", "send_invoice")
LIST_PARAMS = ("limit", "starting_after", "ending_before", "created")


def invoice_create(req: Request) -> Response:
    """A manual invoice (``billing_reason=manual``), optionally pulling in the customer's pending items."""
    p = req.params
    p.only(
        "customer",
        "collection_method",
        "days_until_due",
        "description",
        "metadata",
        "auto_advance",
        "pending_invoice_items_behavior",
        "default_payment_method",
        "currency",
        "automatic_tax",
    )
    backend = req.backend(InvoicesBackend)
    customer = p.string("customer", required=True) or ""
    include = p.enum("pending_invoice_items_behavior", ("exclude", "include")) == "include"
    pending = [
        i
        for i in req.account.store.iter_type("invoiceitem")
        if i.get("customer") == customer and i["invoice"] is None and not i.get("deleted")
    ]
    currency = p.currency() or (pending[0]["currency"] if pending else "usd")
    invoice = backend.invoice_create(
        customer_id=customer,
        currency=currency,
        pending_items=pending if include else [],
        collection_method=p.enum("collection_method", COLLECTION_METHODS) or "charge_automatically",
        days_until_due=p.integer("days_until_due", minimum=0),
        description=p.string("description"),
        metadata=merge_metadata({}, p),
        default_payment_method=p.string("default_payment_method"),
        auto_advance=p.boolean("auto_advance"),
        automatic_tax=automatic_tax_param(p),
    )
    return req.respond(invoice)


def invoice_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(InvoicesBackend).invoice_require(req.path_params["id"]))


def invoice_update(req: Request) -> Response:
    p = req.params
    p.only("metadata", "description", "footer", "auto_advance", "default_payment_method")
    backend = req.backend(InvoicesBackend)
    invoice = backend.invoice_require(req.path_params["id"])
    changes: dict[str, Any] = {}
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(invoice["metadata"], p)
    for key in ("description", "footer", "default_payment_method"):
        if p.has(key):
            if invoice["status"] != "draft" and key != "description":
                raise InvalidRequestError(
                    f"You can only update {key} on a draft invoice.", code="invoice_not_editable", param=key
                )
            changes[key] = p.string(key)
    if p.has("auto_advance"):
        changes["auto_advance"] = bool(p.boolean("auto_advance"))
    return req.respond(backend.invoice_update(invoice["id"], changes))


def invoice_delete(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(InvoicesBackend).invoice_delete(req.path_params["id"]))


def invoice_finalize(req: Request) -> Response:
    p = req.params
    p.only("auto_advance")
    backend = req.backend(InvoicesBackend)
    invoice = backend.invoice_finalize(req.path_params["id"], auto_advance=p.boolean("auto_advance"))
    return req.respond(invoice)


def invoice_pay(req: Request) -> Response:
    p = req.params
    p.only("payment_method", "paid_out_of_band", "off_session", "forgive", "source")
    invoice = req.backend(InvoicesBackend).invoice_pay(
        req.path_params["id"],
        payment_method=p.string("payment_method"),
        paid_out_of_band=bool(p.boolean("paid_out_of_band")),
    )
    return req.respond(invoice)


def invoice_void(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(InvoicesBackend).invoice_void(req.path_params["id"]))


def invoice_mark_uncollectible(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(InvoicesBackend).invoice_mark_uncollectible(req.path_params["id"]))


def invoice_list(req: Request) -> Response:
    p = req.params
    p.only("customer", "subscription", "status", "collection_method", "due_date", *LIST_PARAMS)
    created = p.range_filter("created")
    invoices = req.backend(InvoicesBackend).invoice_list(
        customer=p.string("customer"),
        subscription=p.string("subscription"),
        status=p.enum("status", INVOICE_STATUSES),
        collection_method=p.enum("collection_method", COLLECTION_METHODS),
    )
    invoices = [i for i in invoices if in_range(i["created"], created)]
    return req.respond_list(invoices, url="/v1/invoices", object_type="invoice")


def invoice_lines(req: Request) -> Response:
    p = req.params
    p.only("limit", "starting_after", "ending_before")
    invoice_id = req.path_params["id"]
    lines = req.backend(InvoicesBackend).invoice_lines(invoice_id)
    return req.respond_list(lines, url=f"/v1/invoices/{invoice_id}/lines", object_type="line_item")


def invoice_payment_list(req: Request) -> Response:
    p = req.params
    p.only("invoice", "payment", "status", "limit", "starting_after", "ending_before", "created")
    payment_intent = None
    payment = p.sub("payment")
    if payment is not None:
        payment.only("type", "payment_intent", "payment_record")
        payment.enum("type", ("payment_intent", "payment_record"), required=True)
        payment_intent = payment.string("payment_intent")
    records = req.backend(InvoicesBackend).invoice_payment_list(
        invoice=p.string("invoice"),
        payment_intent=payment_intent,
        status=p.enum("status", ("canceled", "open", "paid")),
    )
    return req.respond_list(records, url="/v1/invoice_payments", object_type="invoice_payment")


def invoice_payment_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.account.store.require("invoice_payment", req.path_params["id"]))


# -- includes (expand-only fields) -----------------------------------------------------------------------


def include_payments(account: Any, invoice: StripeObject) -> dict[str, Any]:
    records = account.backend(InvoicesBackend).invoice_payments_of(invoice["id"])
    from stripe_emulator.core.store import clone

    return {
        "object": "list",
        "data": [clone(r) for r in records],
        "has_more": False,
        "url": f"/v1/invoice_payments?invoice={invoice['id']}",
    }


def include_confirmation_secret(account: Any, invoice: StripeObject) -> dict[str, Any] | None:
    stored = account.store.get("invoice", invoice["id"])
    pi_id = stored.get("_payment_intent") if stored else None
    pi = account.store.get("payment_intent", pi_id) if pi_id else None
    if pi is None:
        return None
    return {"client_secret": pi["client_secret"], "type": "payment_intent"}
