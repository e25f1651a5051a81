"""Credit notes, wire side (``/v1/credit_notes``, its preview, lines and void) and the credit note PDF.
Behaviour lives in :mod:`stripe_emulator.subscriptions.invoices.credit_notes`."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from stripe_emulator.core.errors import InvalidRequestError, ResourceMissing
from stripe_emulator.core.html import format_amount, format_date
from stripe_emulator.core.params import Params, merge_metadata
from stripe_emulator.core.render import DEFAULT_LIMIT, MAX_LIMIT, render
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.core.store import StripeObject
from stripe_emulator.subscriptions.invoices.credit_note_lines import LINE_OBJECT, LineSpec
from stripe_emulator.subscriptions.invoices.credit_notes import (
    OBJECT,
    REASONS,
    CreditNotesBackend,
    CreditNoteSpec,
    RefundLink,
)
from stripe_emulator.subscriptions.pages import make_pdf

CREATE_PARAMS = (
    "invoice",
    "amount",
    "lines",
    "refund_amount",
    "credit_amount",
    "out_of_band_amount",
    "refunds",
    "reason",
    "memo",
    "metadata",
    "effective_at",
    "email_type",
    "shipping_cost",
)
# Manual tax rates and tax amounts (`tax_rates`, `tax_amounts`) are not emulated: refused as unknown.
LINE_PARAMS = (
    "type",
    "invoice_line_item",
    "quantity",
    "amount",
    "description",
    "unit_amount",
    "unit_amount_decimal",
    "metadata",
)
PAGE_PARAMS = ("limit", "starting_after", "ending_before")
_DECIMAL = re.compile(r"^-?\d+(\.\d{1,12})?$")


def _line(h: Params) -> LineSpec:
    h.only(*LINE_PARAMS)
    decimal = h.string("unit_amount_decimal")
    if decimal is not None and not _DECIMAL.match(decimal):
        raise InvalidRequestError(
            f"Invalid decimal: {decimal}",
            param=h.name("unit_amount_decimal"),
            code="parameter_invalid_string",
        )
    return LineSpec(
        param=h.prefix,
        type=h.enum("type", ("custom_line_item", "invoice_line_item"), required=True) or "",
        invoice_line_item=h.string("invoice_line_item"),
        quantity=h.integer("quantity", minimum=1),
        amount=h.integer("amount", minimum=1),
        description=h.string("description"),
        unit_amount=h.integer("unit_amount", minimum=0),
        unit_amount_decimal=decimal,
        metadata=merge_metadata({}, h),
        sent=frozenset(h.data),
    )


def _refund(h: Params) -> RefundLink:
    h.only("refund", "amount_refunded", "type", "payment_record_refund")
    if h.enum("type", ("payment_record_refund", "refund")) == "payment_record_refund":
        raise InvalidRequestError(
            "PaymentRecords are not emulated: only refunds (type=refund) can be linked to a credit note.",
            param=h.name("type"),
        )
    if h.has("payment_record_refund"):
        raise InvalidRequestError(
            f"{h.name('payment_record_refund')} is only valid when {h.name('type')} is payment_record_refund.",
            param=h.name("payment_record_refund"),
        )
    return RefundLink(
        param=h.prefix,
        refund=h.string("refund", required=True) or "",
        amount_refunded=h.integer("amount_refunded", minimum=1),
    )


def _spec(p: Params, *extra: str) -> CreditNoteSpec:
    """The create (and preview) params, validated; ``extra`` names the other params the route takes."""
    p.only(*CREATE_PARAMS, *extra)
    p.enum("email_type", ("credit_note", "none"))  # no e-mails are sent
    shipping = p.sub("shipping_cost")
    if shipping is not None:
        shipping.only("shipping_rate")
    lines = p.hashes("lines")
    return CreditNoteSpec(
        invoice=p.string("invoice", required=True) or "",
        amount=p.integer("amount", minimum=1),
        lines=[_line(h) for h in lines] if lines is not None else None,
        refund_amount=p.integer("refund_amount", minimum=0),
        credit_amount=p.integer("credit_amount", minimum=0),
        out_of_band_amount=p.integer("out_of_band_amount", minimum=0),
        refunds=[_refund(h) for h in p.hashes("refunds") or []],
        reason=p.enum("reason", REASONS),
        memo=p.string("memo"),
        metadata=merge_metadata({}, p),
        effective_at=p.timestamp("effective_at"),
        shipping_cost=shipping is not None,
    )


def _preview_line_ids(p: Params) -> Callable[[int], str]:
    """Ids of a preview's lines, the same for the same request, so ``starting_after`` pages through them."""
    basis = {k: v for k, v in p.data.items() if k not in (*PAGE_PARAMS, "expand")}
    digest = hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()
    return lambda index: "cnli_" + hashlib.sha256(f"{digest}:{index}".encode()).hexdigest()[:24]


def _page(req: Request, items: Sequence[StripeObject], *, url: str) -> Response:
    """One page of ``items`` in their own order (a credit note's lines, in the order they were given)."""
    p = req.params
    limit = p.integer("limit", minimum=1, maximum=MAX_LIMIT) or DEFAULT_LIMIT
    starting_after, ending_before = p.string("starting_after"), p.string("ending_before")
    if starting_after and ending_before:
        raise InvalidRequestError(
            "You may only specify one of these parameters: ending_before, starting_after.",
            param="ending_before",
        )
    positions = {item["id"]: index for index, item in enumerate(items)}
    if starting_after:
        if starting_after not in positions:
            raise ResourceMissing(LINE_OBJECT, starting_after, param="starting_after")
        rest = list(items[positions[starting_after] + 1 :])
        page, has_more = rest[:limit], len(rest) > limit
    elif ending_before:
        if ending_before not in positions:
            raise ResourceMissing(LINE_OBJECT, ending_before, param="ending_before")
        earlier = list(items[: positions[ending_before]])
        page, has_more = earlier[-limit:], len(earlier) > limit
    else:
        page, has_more = list(items[:limit]), len(items) > limit
    item_expand = [e[len("data.") :] for e in p.expand() if e.startswith("data.")]
    data = [render(req.account, item, item_expand) for item in page]
    return Response.json({"object": "list", "data": data, "has_more": has_more, "url": url})


# -- routes --------------------------------------------------------------------------------------------------


def credit_note_create(req: Request) -> Response:
    spec = _spec(req.params)
    return req.respond(req.backend(CreditNotesBackend).credit_note_create(spec))


def credit_note_preview(req: Request) -> Response:
    """``GET /v1/credit_notes/preview``: the same params as a create, nothing created."""
    p = req.params
    spec = _spec(p)
    preview = req.backend(CreditNotesBackend).credit_note_preview(spec, line_id=_preview_line_ids(p))
    return req.respond(preview)


def credit_note_preview_lines(req: Request) -> Response:
    """``GET /v1/credit_notes/preview/lines``: the preview's lines, paginated."""
    p = req.params
    spec = _spec(p, *PAGE_PARAMS)
    preview = req.backend(CreditNotesBackend).credit_note_preview(spec, line_id=_preview_line_ids(p))
    return _page(req, preview["lines"]["data"], url="/v1/credit_notes/preview/lines")


def credit_note_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(CreditNotesBackend).credit_note_require(req.path_params["id"]))


def credit_note_update(req: Request) -> Response:
    p = req.params
    p.only("memo", "metadata")
    backend = req.backend(CreditNotesBackend)
    note = backend.credit_note_require(req.path_params["id"])
    changes: dict[str, Any] = {}
    if p.has("memo"):
        changes["memo"] = p.string("memo")
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(note["metadata"], p)
    return req.respond(backend.credit_note_update(note["id"], changes))


def credit_note_void(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(CreditNotesBackend).credit_note_void(req.path_params["id"]))


def credit_note_list(req: Request) -> Response:
    p = req.params
    p.only("invoice", "customer", "created", *PAGE_PARAMS)
    notes = req.backend(CreditNotesBackend).credit_note_list(
        invoice=p.string("invoice"), customer=p.string("customer"), created=p.range_filter("created")
    )
    return req.respond_list(notes, url="/v1/credit_notes", object_type=OBJECT)


def credit_note_lines(req: Request) -> Response:
    req.params.only(*PAGE_PARAMS)
    note = req.backend(CreditNotesBackend).credit_note_require(req.path_params["id"])
    return _page(req, note["lines"]["data"], url=f"/v1/credit_notes/{note['id']}/lines")


# -- the PDF -------------------------------------------------------------------------------------------------


def credit_note_pdf(req: Request) -> Response:
    """``GET /invoices/{invoice}/credit_notes/{id}/pdf`` (a credit note's ``pdf``): no API key, the ids are
    the capability, as with the invoice PDF."""
    found = req.emulator.locate(req.path_params["id"])
    if found is None or found[1].get("object") != OBJECT or found[1]["invoice"] != req.path_params["invoice"]:
        raise ResourceMissing(OBJECT, req.path_params["id"])
    account, stored = found
    with account.lock:
        note = dict(stored)
    cur = note["currency"]
    text = [
        f"Credit note {note['number']}",
        f"Status: {note['status']}",
        f"Invoice: {note['invoice']}",
        f"Customer: {note['customer']}",
        f"Date of issue: {format_date(note['effective_at'] or note['created'])}",
        "",
    ]
    text += [
        f"{line['description'] or 'Credit'}    {format_amount(line['amount'], cur)}"
        for line in note["lines"]["data"]
    ]
    text += [
        "",
        f"Subtotal: {format_amount(note['subtotal'], cur)}",
        f"Total credited: {format_amount(note['total'], cur)}",
    ]
    if note["memo"]:
        text += ["", str(note["memo"])]
    headers = {
        "Content-Type": "application/pdf",
        "Content-Disposition": f'inline; filename="credit-note-{note["number"]}.pdf"',
    }
    return Response(200, make_pdf(text), headers)
