"""The lines of a credit note (``credit_note_line_item``): an invoice line credited by quantity or by amount,
with its share of the line's discounts and taxes (rounded cumulatively, so crediting a line in several notes adds
up to exactly the line), or a custom line (``unit_amount`` × ``quantity``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from stripe_emulator.core.errors import InvalidRequestError, ParameterMissing, ResourceMissing
from stripe_emulator.core.html import format_amount
from stripe_emulator.core.store import StripeObject, clone

LINE_OBJECT = "credit_note_line_item"


@dataclass
class LineSpec:
    """One ``lines[i]`` param, parsed (``param`` is ``lines[i]``, for errors)."""

    param: str
    type: str
    invoice_line_item: str | None = None
    quantity: int | None = None
    amount: int | None = None
    description: str | None = None
    unit_amount: int | None = None
    unit_amount_decimal: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    sent: frozenset[str] = frozenset()


def prorated(total: int, part: int, whole: int) -> int:
    """``total × part / whole`` rounded half away from zero (for non-negative values: half up)."""
    if whole == 0:
        return 0
    exact = Fraction(total * part, whole)
    sign = -1 if exact < 0 else 1
    return sign * int(abs(exact) + Fraction(1, 2))


def invoice_line_credit(
    store: Any, by_id: dict[str, StripeObject], credited: dict[str, dict[str, Any]], spec: LineSpec
) -> StripeObject:
    p = spec.param
    for key in ("description", "unit_amount", "unit_amount_decimal"):
        if key in spec.sent:
            raise InvalidRequestError(
                f"{p}[{key}] is only valid when {p}[type] is custom_line_item.", param=f"{p}[{key}]"
            )
    if spec.invoice_line_item is None:
        raise ParameterMissing(f"{p}[invoice_line_item]")
    summary = by_id.get(spec.invoice_line_item)
    if summary is None:
        raise ResourceMissing("invoice_line_item", spec.invoice_line_item, param=f"{p}[invoice_line_item]")
    if spec.quantity is not None and spec.amount is not None:
        raise InvalidRequestError(
            f"You may only specify one of these parameters: {p}[amount], {p}[quantity].",
            param=f"{p}[amount]",
        )
    invoice_line = store.get("line_item", summary["id"]) or summary
    line_amount, line_quantity = int(invoice_line["amount"]), int(invoice_line["quantity"] or 0)
    if line_amount <= 0:
        raise InvalidRequestError(
            f"The invoice line item {summary['id']} has no positive amount to credit.",
            param=f"{p}[invoice_line_item]",
        )
    done = credited.get(summary["id"], {"mode": None, "quantity": 0, "amount": 0})
    mode = "amount" if spec.amount is not None else "quantity" if spec.quantity is not None else None
    mode = mode or done["mode"] or ("quantity" if line_quantity > 0 else "amount")
    if done["mode"] is not None and done["mode"] != mode:
        raise InvalidRequestError(
            f"The invoice line item {summary['id']} is already credited by {done['mode']} (by an earlier "
            f"line or credit note): it can only be credited by {done['mode']}, not by {mode}.",
            param=f"{p}[{mode}]",
        )
    before = int(done["amount"])
    if mode == "quantity":
        left = line_quantity - int(done["quantity"])
        quantity = spec.quantity if spec.quantity is not None else left
        if quantity > left or left <= 0:
            raise InvalidRequestError(
                f"The quantity to credit ({quantity}) is greater than the quantity of invoice line item "
                f"{summary['id']} that is left to credit ({max(left, 0)}).",
                param=f"{p}[quantity]",
            )
        gross = prorated(line_amount, int(done["quantity"]) + quantity, line_quantity) - before
    else:
        left = line_amount - before
        gross = spec.amount if spec.amount is not None else left
        if gross > left or left <= 0:
            currency = invoice_line["currency"]
            raise InvalidRequestError(
                f"The amount to credit ({format_amount(gross, currency)}) is greater than the amount of "
                f"invoice line item {summary['id']} that is left to credit "
                f"({format_amount(max(left, 0), currency)}).",
                param=f"{p}[amount]",
            )
        quantity = None
    after = before + gross

    def part(value: int) -> int:
        return prorated(value, after, line_amount) - prorated(value, before, line_amount)

    discounts = [
        {"amount": part(int(d["amount"])), "discount": d["discount"]}
        for d in invoice_line.get("discount_amounts") or []
    ]
    taxes = []
    for tax in invoice_line.get("taxes") or []:
        share = clone(tax)
        share["amount"] = part(int(tax["amount"]))
        share["taxable_amount"] = part(int(tax["taxable_amount"]))
        taxes.append(share)
    unit = None
    if mode == "quantity" and line_quantity and line_amount % line_quantity == 0:
        unit = line_amount // line_quantity
    line: StripeObject = {
        "id": "",
        "object": LINE_OBJECT,
        "amount": gross,
        "description": invoice_line.get("description"),
        "discount_amount": sum(d["amount"] for d in discounts),
        "discount_amounts": discounts,
        "invoice_line_item": summary["id"],
        "livemode": False,
        "metadata": dict(spec.metadata),
        "pretax_credit_amounts": [pretax(d) for d in discounts],
        "quantity": quantity,
        "tax_rates": [],
        "taxes": taxes,
        "type": "invoice_line_item",
        "unit_amount": unit,
        "unit_amount_decimal": str(unit) if unit is not None else None,
    }
    credit(credited, summary["id"], line)
    return line


def custom_line(invoice: StripeObject, spec: LineSpec) -> StripeObject:
    p = spec.param
    if invoice["automatic_tax"]["enabled"]:
        raise InvalidRequestError(
            "custom_line_item is not valid when the invoice is set up with automatic_tax[enabled]=true.",
            param=f"{p}[type]",
        )
    for key in ("invoice_line_item", "amount"):
        if key in spec.sent:
            raise InvalidRequestError(
                f"{p}[{key}] is only valid when {p}[type] is invoice_line_item.", param=f"{p}[{key}]"
            )
    if spec.unit_amount is not None and spec.unit_amount_decimal is not None:
        raise InvalidRequestError(
            f"You may only specify one of these parameters: {p}[unit_amount], {p}[unit_amount_decimal].",
            param=f"{p}[unit_amount]",
        )
    quantity = spec.quantity if spec.quantity is not None else 1
    if spec.unit_amount is not None:
        unit_decimal = Decimal(spec.unit_amount)
    elif spec.unit_amount_decimal is not None:
        unit_decimal = Decimal(spec.unit_amount_decimal)
    else:
        raise ParameterMissing(f"{p}[unit_amount]")
    amount = int((unit_decimal * quantity).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return {
        "id": "",
        "object": LINE_OBJECT,
        "amount": amount,
        "description": spec.description,
        "discount_amount": 0,
        "discount_amounts": [],
        "invoice_line_item": None,
        "livemode": False,
        "metadata": dict(spec.metadata),
        "pretax_credit_amounts": [],
        "quantity": quantity,
        "tax_rates": [],
        "taxes": [],
        "type": "custom_line_item",
        "unit_amount": spec.unit_amount,
        "unit_amount_decimal": str(spec.unit_amount)
        if spec.unit_amount is not None
        else spec.unit_amount_decimal,
    }


def credit(credited: dict[str, dict[str, Any]], invoice_line: str, line: StripeObject) -> None:
    done = credited.setdefault(invoice_line, {"mode": None, "quantity": 0, "amount": 0})
    done["mode"] = "quantity" if line["quantity"] is not None else "amount"
    done["quantity"] += int(line["quantity"] or 0)
    done["amount"] += int(line["amount"])


def pretax(discount_amount: dict[str, Any]) -> dict[str, Any]:
    """A discount's share as a ``pretax_credit_amounts`` entry."""
    return {
        "amount": discount_amount["amount"],
        "credit_balance_transaction": None,
        "discount": discount_amount["discount"],
        "type": "discount",
    }
