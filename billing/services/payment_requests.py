"""What a payment request is: its lines (catalog prices or custom amounts), the redirect URLs checked against
the project's allowed hosts, the payment type inferred from the lines, and the request's fingerprint that makes
the same reference (or Idempotency-Key) with another request a conflict.
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from billing.models import Payment
from catalog import selectors as catalog_selectors
from catalog.models import Price
from catalog.pricing import price_amount
from core.errors import InvalidRequest
from core.serializers import MAX_LINE_ITEMS
from projects.models import Project


@dataclass(frozen=True)
class Line:
    """One thing to pay for: a catalog price, or a custom amount. A tiered price has no unit amount."""

    quantity: int
    unit_amount: int | None
    currency: str
    price: Price | None = None
    description: str = ""

    @property
    def metered(self) -> bool:
        """A metered price (an item of a subscription): billed in arrears from usage, bought without quantity."""
        return self.price is not None and self.price.usage_type == Price.UsageType.METERED

    @property
    def amount(self) -> int:
        if self.metered:
            return 0  # nothing is due for it now
        if self.price is not None:
            return price_amount(self.price, self.quantity)
        return int(self.unit_amount or 0) * self.quantity

    def snapshot(self) -> dict[str, Any]:
        return {
            "price": self.price.pk if self.price else None,
            "price_key": self.price.key if self.price else None,
            "product": self.price.product_id if self.price else None,
            "quantity": None if self.metered else self.quantity,
            "unit_amount": self.unit_amount,
            "amount": self.amount,
            "currency": self.currency,
            "description": self.description,
        }


def lines_for_prices(*, project: Project, items: list[tuple[str, int]], param: str = "items") -> list[Line]:
    # Each price is one Stripe line item; Stripe refuses a Checkout Session with more than 100. Checked here too
    # (not only on the request body) because a cart is expanded into its lines here, before anything is written.
    if len(items) > MAX_LINE_ITEMS:
        raise InvalidRequest(
            f"At most {MAX_LINE_ITEMS} line items can be paid at once (Stripe's limit per checkout); "
            f"this has {len(items)}.",
            code="too_many_line_items",
            param=param,
        )
    lines = []
    for index, (price_ref, quantity) in enumerate(items):
        where = f"{param}[{index}].price" if param == "items" else param
        price = catalog_selectors.price_get(project=project, key_or_id=price_ref, param=where)
        if not price.active:
            raise InvalidRequest(f"Price {price.key!r} is not active.", code="price_inactive", param=where)
        if not price.stripe_price_id:
            raise InvalidRequest(
                f"Price {price.key!r} is not synced to Stripe yet.", code="price_not_synced", param=where
            )
        if price.usage_type == Price.UsageType.METERED:
            raise InvalidRequest(
                "Metered prices are billed by usage and cannot be bought directly.",
                code="price_metered",
                param=where,
            )
        lines.append(
            Line(price=price, quantity=quantity, unit_amount=price.unit_amount, currency=price.currency)
        )
    if len({line.currency for line in lines}) > 1:
        raise InvalidRequest("All items must be in one currency.", code="currency_mixed", param=param)
    return lines


def redirect_urls_validate(*, project: Project, **urls: str) -> None:
    allowed = {host.lower() for host in project.allowed_redirect_hosts}
    for name, url in urls.items():
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise InvalidRequest(f"{name} must be an absolute http(s) URL.", code="invalid_url", param=name)
        host = parts.hostname.lower() + (f":{parts.port}" if parts.port else "")
        if host not in allowed and parts.hostname.lower() not in allowed:
            raise InvalidRequest(
                f"{name} host {host!r} is not in the project's allowed_redirect_hosts.",
                code="redirect_not_allowed",
                param=name,
            )


def _fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class PaymentRequest:
    """Everything that defines a payment; the same reference with another request is a conflict."""

    customer: str
    type: str
    flow: str
    lines: tuple[Line, ...]
    success_url: str = ""
    cancel_url: str = ""
    description: str = ""
    metadata: tuple[tuple[str, str], ...] = ()
    trial_days: int | None = None
    cart_id: str | None = None
    automatic_tax: bool = False
    # The tenant's promotion code to redeem, or a code field on Stripe's page (checkout flow only).
    promotion_code: str = ""
    allow_promotion_codes: bool = False
    # Off session only: the saved Stripe PaymentMethod to charge.
    payment_method: str = ""

    def fingerprint(self) -> str:
        discount = {"promotion_code": self.promotion_code} if self.promotion_code else {}
        if self.allow_promotion_codes:
            discount["allow_promotion_codes"] = "true"
        return _fingerprint(
            {
                **discount,
                "customer": self.customer,
                "type": self.type,
                "flow": self.flow,
                "lines": [line.snapshot() for line in self.lines],
                "success_url": self.success_url,
                "cancel_url": self.cancel_url,
                "description": self.description,
                "metadata": dict(self.metadata),
                "trial_days": self.trial_days,
                "cart": self.cart_id,
                **({"automatic_tax": True} if self.automatic_tax else {}),
                **({"payment_method": self.payment_method} if self.payment_method else {}),
            }
        )

    @property
    def amount(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def currency(self) -> str:
        return self.lines[0].currency


def automatic_tax_validate(*, lines: Sequence[Line], flow: str) -> None:
    """Stripe Tax needs Checkout (a PaymentIntent has no automatic tax) and a tax behavior on every price;
    refused before anything is written."""
    if flow != Payment.Flow.CHECKOUT:
        raise InvalidRequest(
            "automatic_tax needs the checkout flow: a PaymentIntent has no automatic tax at Stripe.",
            code="automatic_tax_not_supported",
            param="automatic_tax",
        )
    for line in lines:
        if line.price is None or line.price.tax_behavior == Price.TaxBehavior.UNSPECIFIED:
            name = repr(line.price.key) if line.price else "A custom amount"
            raise InvalidRequest(
                f"{name} has no tax_behavior: automatic tax needs `inclusive` or `exclusive` on every price.",
                code="tax_behavior_unspecified",
                param="automatic_tax",
            )


def payment_type_infer(lines: list[Line], explicit: str | None) -> str:
    recurring = [line for line in lines if line.price is not None and line.price.is_recurring]
    inferred: str = (
        Payment.Type.SUBSCRIPTION
        if recurring
        else (Payment.Type.ONE_TIME if len(lines) == 1 else Payment.Type.CART)
    )
    if explicit and explicit != inferred:
        if not (explicit == Payment.Type.CART and not recurring):
            raise InvalidRequest(
                f"type {explicit!r} does not match the items (they make a {inferred!r}).",
                code="type_mismatch",
                param="type",
            )
        inferred = explicit
    if inferred == Payment.Type.SUBSCRIPTION and (len(lines) != 1 or len(recurring) != 1):
        raise InvalidRequest(
            "A subscription is bought with exactly one recurring price.",
            code="subscription_items",
            param="items",
        )
    return inferred
