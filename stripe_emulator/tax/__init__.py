"""Stripe Tax (``automatic_tax``), emulated with a deterministic table of rates instead of Stripe's engine.

Everything that computes tax lives here; checkout, subscriptions and invoices only call in:

- :func:`tax_location` — the customer's tax location (its ``address.country``), or ``None``: Stripe then answers
  ``automatic_tax.status = requires_location_inputs`` and refuses what cannot be taxed
  (:func:`require_location`: ``customer_tax_location_invalid``).
- :func:`require_tax_behavior` — a price used with automatic tax needs ``tax_behavior`` ``inclusive`` or
  ``exclusive``: the emulated account has no default tax behavior in its tax settings (Stripe's
  ``defaults.tax_behavior`` is null until set), so ``unspecified`` is refused, as Stripe does then.
- :func:`line_tax` — the tax of one line on its amount after discounts, rounded per line.
- :func:`invoice_taxes_apply` — an invoice's line ``taxes``, ``total_taxes`` and the tax parts of its totals.

Rates (:data:`RATES`): DE 19 %, FR 20 %, GB 20 %, NL 21 % (``vat``, ``standard_rated``); every other country —
the US included — 0 % with ``taxability_reason: not_collecting``, as Stripe answers where the account has no
tax registration. The rate objects (``txr_…``) are created on first use per account, country and behaviour,
like the rates Stripe Tax generates, and named by ``tax_rate_details.tax_rate``.

Rounding: Stripe Tax computes and rounds tax per line item (the invoice's and the session's tax are sums of the
lines' rounded amounts), half away from zero. Exclusive: ``round(taxable × rate)``; inclusive: the tax inside
the amount, ``taxable − round(taxable / (1 + rate))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stripe_emulator.core import ids
from stripe_emulator.core.currencies import round_half_away
from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.params import Params
from stripe_emulator.core.store import StripeObject, clone

if TYPE_CHECKING:
    from stripe_emulator.core.account import Account


@dataclass(frozen=True)
class Rule:
    percentage: int
    tax_type: str
    display_name: str
    taxability_reason: str


RATES: dict[str, Rule] = {
    "DE": Rule(19, "vat", "VAT", "standard_rated"),
    "FR": Rule(20, "vat", "VAT", "standard_rated"),
    "GB": Rule(20, "vat", "VAT", "standard_rated"),
    "NL": Rule(21, "vat", "VAT", "standard_rated"),
}
NOT_COLLECTING = Rule(0, "sales_tax", "Sales Tax", "not_collecting")

LOCATION_ERROR = (
    "The customer's location isn't recognized. Set a valid customer address in order to automatically "
    "calculate tax."
)


def rule_for(country: str) -> Rule:
    return RATES.get(country.upper(), NOT_COLLECTING)


def tax_location(address: dict[str, Any] | None) -> str | None:
    """The country an address is taxed in, or ``None`` when it gives none."""
    country = (address or {}).get("country")
    return str(country).upper() if country else None


def customer_location(account: Account, customer_id: str | None) -> str | None:
    customer = account.store.get("customer", customer_id) if customer_id else None
    return tax_location(customer.get("address")) if customer else None


def require_location(country: str | None, *, param: str | None = "automatic_tax[enabled]") -> None:
    if country is None:
        raise InvalidRequestError(LOCATION_ERROR, code="customer_tax_location_invalid", param=param)


def require_tax_behavior(price: StripeObject, *, param: str | None) -> None:
    if price.get("tax_behavior") not in ("inclusive", "exclusive"):
        raise InvalidRequestError(
            f"The price ({price['id']}) has no tax_behavior. Automatic tax needs every price's tax_behavior "
            "to be `inclusive` or `exclusive` (or a default tax behavior in your tax settings).",
            param=param,
        )


def automatic_tax_field(*, enabled: bool, status: str | None, invoice: bool = False) -> dict[str, Any]:
    """``automatic_tax`` of an invoice or a Checkout Session (subscriptions have no ``status``)."""
    field: dict[str, Any] = {
        "enabled": enabled,
        "liability": {"type": "self"} if enabled else None,
        "provider": "stripe" if enabled else None,
        "status": status if enabled else None,
    }
    if invoice:
        field["disabled_reason"] = None
    return field


def tax_amount(taxable: int, *, percentage: int, inclusive: bool) -> int:
    if inclusive:
        return taxable - round_half_away(taxable * 100, 100 + percentage)
    return round_half_away(taxable * percentage, 100)


def tax_rate(account: Account, country: str, *, inclusive: bool) -> StripeObject:
    """The account's rate object for a country and behaviour, created on first use (as Stripe Tax does)."""
    key = f"{country}:{'inclusive' if inclusive else 'exclusive'}"
    for rate in account.store.iter_type("tax_rate"):
        if rate.get("_key") == key:
            return rate
    rule = rule_for(country)
    rate = {
        "id": ids.new_id("txr"),
        "object": "tax_rate",
        "active": True,
        "country": country,
        "created": account.now(),
        "description": None,
        "display_name": rule.display_name,
        "effective_percentage": float(rule.percentage),
        "flat_amount": None,
        "inclusive": inclusive,
        "jurisdiction": country,
        "jurisdiction_level": "country",
        "livemode": False,
        "metadata": {},
        "percentage": float(rule.percentage),
        "rate_type": "percentage",
        "state": None,
        "tax_type": rule.tax_type,
        "_key": key,
    }
    account.store.insert(rate)
    return rate


def line_tax(account: Account, *, taxable: int, tax_behavior: str, country: str) -> dict[str, Any]:
    """One line's tax (an invoice line's ``taxes[]`` entry) on ``taxable`` — the line's amount after
    discounts."""
    rule = rule_for(country)
    inclusive = tax_behavior == "inclusive"
    rate = tax_rate(account, country, inclusive=inclusive)
    return {
        "amount": tax_amount(taxable, percentage=rule.percentage, inclusive=inclusive),
        "tax_behavior": "inclusive" if inclusive else "exclusive",
        "tax_rate_details": {"tax_rate": rate["id"]},
        "taxability_reason": rule.taxability_reason,
        "taxable_amount": taxable - tax_amount(taxable, percentage=rule.percentage, inclusive=True)
        if inclusive
        else taxable,
        "type": "tax_rate_details",
    }


def sum_taxes(taxes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lines' taxes summed per rate (an invoice's ``total_taxes``), in first-seen order."""
    totals: dict[str, dict[str, Any]] = {}
    for tax in taxes:
        key = tax["tax_rate_details"]["tax_rate"]
        if key not in totals:
            totals[key] = clone(tax)
        else:
            totals[key]["amount"] += tax["amount"]
            totals[key]["taxable_amount"] += tax["taxable_amount"]
    return list(totals.values())


def split(taxes: list[dict[str, Any]]) -> tuple[int, int]:
    """(exclusive tax, inclusive tax) of a list of taxes."""
    exclusive = sum(t["amount"] for t in taxes if t["tax_behavior"] == "exclusive")
    inclusive = sum(t["amount"] for t in taxes if t["tax_behavior"] == "inclusive")
    return exclusive, inclusive


def _discounted(line: dict[str, Any]) -> int:
    return int(line["amount"]) - sum(int(d.get("amount") or 0) for d in line.get("discount_amounts") or [])


def invoice_taxes_apply(account: Account, invoice: StripeObject) -> None:
    """Tax an invoice whose ``automatic_tax`` is enabled, after its other totals are computed (``total`` =
    ``total_excluding_tax`` = subtotal − discounts): each line's ``taxes``, ``total_taxes``, and the tax in the
    totals — exclusive tax is added to ``total``, inclusive tax taken out of ``total_excluding_tax`` and
    ``subtotal_excluding_tax``. Without a tax location the status is ``requires_location_inputs`` and nothing
    is taxed (finalization refuses such an invoice). Finalized invoices are never re-taxed."""
    if not invoice["automatic_tax"]["enabled"] or invoice["status"] != "draft":
        return
    country = customer_location(account, invoice["customer"])
    invoice["automatic_tax"]["status"] = "requires_location_inputs" if country is None else "complete"
    all_taxes: list[dict[str, Any]] = []
    for summary in invoice["lines"]["data"]:
        line = account.store.get("line_item", summary["id"]) or summary
        taxes: list[dict[str, Any]] = []
        if country is not None:
            price_id = ((line.get("pricing") or {}).get("price_details") or {}).get("price")
            price = account.store.get("price", price_id) if price_id else None
            behavior = (price or {}).get("tax_behavior") or "exclusive"
            taxes = [line_tax(account, taxable=_discounted(line), tax_behavior=behavior, country=country)]
        line["taxes"] = taxes
        summary["taxes"] = clone(taxes)
        all_taxes.extend(taxes)
    invoice["total_taxes"] = sum_taxes(all_taxes)
    exclusive, inclusive = split(all_taxes)
    invoice["total"] = invoice["total_excluding_tax"] + exclusive
    invoice["total_excluding_tax"] -= inclusive
    invoice["subtotal_excluding_tax"] -= inclusive


def automatic_tax_param(p: Params) -> bool | None:
    """``automatic_tax[enabled]`` (required in the hash) and ``automatic_tax[liability][type]=self``: whether
    automatic tax is asked for, or ``None`` when the hash is absent. Connect liability is not emulated."""
    hash_ = p.sub("automatic_tax")
    if hash_ is None:
        return None
    hash_.only("enabled", "liability")
    enabled = bool(hash_.boolean("enabled", required=True))
    liability = hash_.sub("liability")
    if liability is not None:
        liability.only("type", "account")
        if liability.enum("type", ("account", "self"), required=True) != "self":
            raise InvalidRequestError(
                "The emulator supports automatic_tax[liability][type]=self only.",
                param="automatic_tax[liability][type]",
            )
    return enabled


def subscription_automatic_tax(enabled: bool) -> dict[str, Any]:
    """A subscription's ``automatic_tax`` (no ``status``/``provider`` there)."""
    return {"disabled_reason": None, "enabled": enabled, "liability": {"type": "self"} if enabled else None}


def check_taxable(
    account: Account, *, customer_id: str, prices: Sequence[tuple[StripeObject, str | None]]
) -> None:
    """Before enabling automatic tax on a subscription or invoice: the customer has a tax location and every
    price a tax behavior (nothing is written when this refuses)."""
    require_location(customer_location(account, customer_id))
    for price, param in prices:
        require_tax_behavior(price, param=param)


def public_rate(rate: StripeObject) -> dict[str, Any]:
    """A rate object as the API shows it (nested in a Checkout tax breakdown)."""
    return {k: clone(v) for k, v in rate.items() if not k.startswith("_")}


def session_tax_country(account: Account, session: StripeObject) -> str | None:
    """The country a Checkout Session (and the subscription it creates) is taxed in: the one the page
    collected, else its customer's."""
    country = session.get("_tax_country") or customer_location(account, session["customer"])
    return str(country) if country else None


def session_taxes_apply(account: Account, session: StripeObject, items: list[StripeObject]) -> None:
    """Tax a Checkout Session's line items (``amount_tax``, ``amount_total``, their expandable ``taxes``) and
    the session's ``total_details.amount_tax`` and ``amount_total`` from the collected or the customer's
    location (``session["_tax_country"]``); ``requires_location_inputs`` until there is one. Inclusive tax is
    counted in ``amount_tax`` but not added to the totals."""
    if not session["automatic_tax"]["enabled"]:
        return
    country = session_tax_country(account, session)
    session["automatic_tax"]["status"] = "requires_location_inputs" if country is None else "complete"
    exclusive_total = tax_total = 0
    for item in items:
        taxable = int(item["amount_subtotal"]) - int(item.get("amount_discount") or 0)
        taxes: list[dict[str, Any]] = []
        if country is not None:
            tax = line_tax(
                account, taxable=taxable, tax_behavior=item["price"]["tax_behavior"], country=country
            )
            rate = account.store.require("tax_rate", tax["tax_rate_details"]["tax_rate"], param=None)
            taxes = [
                {
                    "amount": tax["amount"],
                    "rate": public_rate(rate),
                    "taxability_reason": tax["taxability_reason"],
                    "taxable_amount": tax["taxable_amount"],
                }
            ]
        exclusive = sum(t["amount"] for t in taxes if not t["rate"]["inclusive"])
        item["amount_tax"] = sum(t["amount"] for t in taxes)
        item["amount_total"] = taxable + exclusive
        item["_taxes"] = taxes
        exclusive_total += exclusive
        tax_total += item["amount_tax"]
    session["total_details"]["amount_tax"] = tax_total
    session["amount_total"] = (
        int(session["amount_subtotal"])
        - int(session["total_details"].get("amount_discount") or 0)
        + exclusive_total
    )


def session_tax_breakdown(items: list[StripeObject]) -> list[dict[str, Any]]:
    """``total_details.breakdown.taxes``: the items' taxes summed per rate."""
    totals: dict[str, dict[str, Any]] = {}
    for item in items:
        for tax in item.get("_taxes") or []:
            key = tax["rate"]["id"]
            if key not in totals:
                totals[key] = clone(tax)
            else:
                totals[key]["amount"] += tax["amount"]
                totals[key]["taxable_amount"] += tax["taxable_amount"]
    return list(totals.values())


def tax_labels(account: Account, invoice: StripeObject) -> list[tuple[str, int]]:
    """The tax lines a hosted page shows for an invoice: ``("VAT (19%)", 361)``, ``("VAT (19%, included)",
    190)`` per rate of its ``total_taxes``."""
    labels = []
    for tax in invoice.get("total_taxes") or []:
        rate = account.store.get("tax_rate", (tax.get("tax_rate_details") or {}).get("tax_rate") or "")
        name = f"{rate['display_name']} ({rate['percentage']:g}%" if rate else "Tax ("
        name += ", included)" if tax["tax_behavior"] == "inclusive" else ")"
        labels.append((name.replace("(, ", "("), int(tax["amount"])))
    return labels
