"""Hosted invoice page (``GET /invoices/{id}``, HTML) and invoice PDF (``GET /invoices/{id}/pdf``, a real
one-page ``application/pdf`` listing the invoice's lines and totals). No API key: the invoice id is the
capability, as with Stripe's hosted URLs. Every value is HTML-escaped."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from stripe_emulator.core.errors import ResourceMissing
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.core.store import StripeObject
from stripe_emulator.subscriptions.models.base import money


def _invoice(req: Request) -> StripeObject:
    found = req.emulator.locate(req.path_params["id"])
    if found is None or found[1].get("object") != "invoice" or found[1].get("deleted"):
        raise ResourceMissing("invoice", req.path_params["id"])
    account, invoice = found
    with account.lock:
        if invoice["status"] == "draft":
            raise ResourceMissing("invoice", req.path_params["id"])
        return dict(invoice)


def _date(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d") if ts else "—"


def invoice_page(req: Request) -> Response:
    invoice = _invoice(req)
    e = html.escape
    cur = invoice["currency"]
    rows = "".join(
        f"<tr><td>{e(str(line['description']))}</td><td>{e(str(line['quantity']))}</td>"
        f"<td>{e(money(line['amount'], cur))}</td></tr>"
        for line in invoice["lines"]["data"]
    )
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Invoice {e(str(invoice["number"]))}</title></head>
<body>
<h1>Invoice {e(str(invoice["number"]))}</h1>
<p>Status: <strong class="status">{e(invoice["status"])}</strong></p>
<p>Billed to: {e(str(invoice["customer_email"] or invoice["customer_name"] or invoice["customer"]))}</p>
<p>Date: {e(_date(invoice["effective_at"] or invoice["created"]))}</p>
<table><thead><tr><th>Description</th><th>Qty</th><th>Amount</th></tr></thead><tbody>{rows}</tbody></table>
<p>Subtotal: {e(money(invoice["subtotal"], cur))}</p>
<p>Total: {e(money(invoice["total"], cur))}</p>
<p>Amount due: {e(money(invoice["amount_due"], cur))}</p>
<p>Amount paid: {e(money(invoice["amount_paid"], cur))}</p>
<p>Amount remaining: {e(money(invoice["amount_remaining"], cur))}</p>
<p><a href="{e(str(invoice["invoice_pdf"]))}">Download PDF</a></p>
</body></html>"""
    return Response(200, body.encode(), {"Content-Type": "text/html; charset=utf-8"})


def invoice_pdf(req: Request) -> Response:
    invoice = _invoice(req)
    cur = invoice["currency"]
    text = [
        f"Invoice {invoice['number']}",
        f"Status: {invoice['status']}",
        f"Customer: {invoice['customer_email'] or invoice['customer']}",
        f"Date: {_date(invoice['effective_at'] or invoice['created'])}",
        "",
    ]
    text += [f"{line['description']}    {money(line['amount'], cur)}" for line in invoice["lines"]["data"]]
    text += [
        "",
        f"Total: {money(invoice['total'], cur)}",
        f"Amount due: {money(invoice['amount_due'], cur)}",
        f"Amount paid: {money(invoice['amount_paid'], cur)}",
        f"Amount remaining: {money(invoice['amount_remaining'], cur)}",
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
