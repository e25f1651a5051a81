"""Hosted invoice page (``GET /invoices/{id}``, HTML in the layout every hosted page shares,
:mod:`stripe_emulator.core.html`) and invoice PDF (``GET /invoices/{id}/pdf``, a real
one-page ``application/pdf`` listing the invoice's lines and totals). No API key: the invoice id is the
capability, as with Stripe's hosted URLs. Every value is HTML-escaped."""

from __future__ import annotations

import html

from stripe_emulator.core.errors import ResourceMissing
from stripe_emulator.core.html import format_amount, format_date, page, pill
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.core.store import StripeObject
from stripe_emulator.tax import tax_labels


def _taxes(req: Request, invoice: StripeObject) -> list[tuple[str, int]]:
    found = req.emulator.locate(invoice["id"])
    if found is None:
        return []
    with found[0].lock:
        return tax_labels(found[0], invoice)


def _invoice(req: Request) -> StripeObject:
    found = req.emulator.locate(req.path_params["id"])
    if found is None or found[1].get("object") != "invoice" or found[1].get("deleted"):
        raise ResourceMissing("invoice", req.path_params["id"])
    account, invoice = found
    with account.lock:
        if invoice["status"] == "draft":
            raise ResourceMissing("invoice", req.path_params["id"])
        return dict(invoice)


def invoice_page(req: Request) -> Response:
    invoice = _invoice(req)
    e = html.escape
    cur = invoice["currency"]

    def amount(value: int) -> str:
        return e(format_amount(value, cur))

    status = invoice["status"]
    if status == "paid":
        headline = f"Paid on {format_date(invoice['status_transitions']['paid_at'] or invoice['created'])}"
    elif invoice["due_date"]:
        headline = f"Due {format_date(invoice['due_date'])}"
    else:
        headline = f"Issued {format_date(invoice['effective_at'] or invoice['created'])}"
    big = invoice["amount_paid"] if status == "paid" else invoice["amount_remaining"]
    summary = f"""<p class="eyebrow">Invoice {e(str(invoice["number"]))}</p>
<p class="amount">{amount(big)}</p>
<p class="then">{e(headline)} {pill(status)}</p>
<a class="button secondary" href="{e(str(invoice["invoice_pdf"]))}">Download invoice (PDF)</a>
<dl class="totals spaced">
<div><dt>Invoice number</dt><dd>{e(str(invoice["number"]))}</dd></div>
<div><dt>Date</dt><dd>{e(format_date(invoice["effective_at"] or invoice["created"]))}</dd></div>
<div><dt>Billed to</dt><dd>{e(str(invoice["customer_email"] or invoice["customer_name"] or invoice["customer"]))}</dd></div>
<div><dt>Currency</dt><dd>{e(cur.upper())}</dd></div>
</dl>"""
    rows = "".join(
        f'<tr><td><span class="name">{e(str(line["description"]))}</span>'
        f'<span class="sub">Qty {e(str(line["quantity"]))}</span></td>'
        f'<td class="num">{amount(line["amount"])}</td></tr>'
        for line in invoice["lines"]["data"]
    )
    totals = [("Subtotal", invoice["subtotal"]), *_taxes(req, invoice), ("Total", invoice["total"])]
    if invoice["total"] != invoice["amount_due"]:
        totals.append(("Amount due", invoice["amount_due"]))
    totals += [("Amount paid", invoice["amount_paid"]), ("Amount remaining", invoice["amount_remaining"])]
    dl = "".join(
        f"<div{' class=grand' if label == 'Amount remaining' else ''}><dt>{e(label)}</dt><dd>{amount(value)}</dd></div>"
        for label, value in totals
    )
    panel = f"""<h2>Summary</h2>
<table class="lines">{rows}</table>
<dl class="totals">{dl}</dl>"""
    body = page(title=f"Invoice {invoice['number']}", summary=summary, panel=panel)
    return Response(200, body.encode(), {"Content-Type": "text/html; charset=utf-8"})


def invoice_pdf(req: Request) -> Response:
    invoice = _invoice(req)
    cur = invoice["currency"]
    text = [
        f"Invoice {invoice['number']}",
        f"Status: {invoice['status']}",
        f"Customer: {invoice['customer_email'] or invoice['customer']}",
        f"Date: {format_date(invoice['effective_at'] or invoice['created'])}",
        "",
    ]
    text += [
        f"{line['description']}    {format_amount(line['amount'], cur)}" for line in invoice["lines"]["data"]
    ]
    text += [
        "",
        f"Subtotal: {format_amount(invoice['subtotal'], cur)}",
        *(f"{label}: {format_amount(value, cur)}" for label, value in _taxes(req, invoice)),
        f"Total: {format_amount(invoice['total'], cur)}",
        f"Amount due: {format_amount(invoice['amount_due'], cur)}",
        f"Amount paid: {format_amount(invoice['amount_paid'], cur)}",
        f"Amount remaining: {format_amount(invoice['amount_remaining'], cur)}",
    ]
    headers = {
        "Content-Type": "application/pdf",
        "Content-Disposition": f'inline; filename="invoice-{invoice["number"]}.pdf"',
    }
    return Response(200, make_pdf(text), headers)


def make_pdf(lines: list[str]) -> bytes:
    """A minimal valid one-page PDF (Helvetica, WinAnsi) showing ``lines``."""

    def esc(s: str) -> bytes:
        raw = s.replace("–", "-").replace("—", "-").encode("cp1252", errors="replace")
        return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")

    stream = b"BT /F1 11 Tf 50 800 Td 14 TL\n" + b"".join(b"(" + esc(s) + b") Tj T*\n" for s in lines) + b"ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
