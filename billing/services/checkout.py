"""Starting a purchase from the API: the rules that turn a checkout (`/checkout/subscription`, `/checkout/item`,
`/checkout/cart`) or a `/payments` request into a `PaymentRequest`, then `payment_create`.

A refused request raises before anything is written. The error codes, messages and `param` values are the API's
contract (API.md "Checkout", "Payments").
"""

from collections.abc import Mapping, Sequence

from billing import selectors
from billing.models import Cart, Payment
from billing.services.carts import cart_lines
from billing.services.payment_create import payment_create
from billing.services.payment_requests import (
    Line,
    PaymentRequest,
    automatic_tax_validate,
    lines_for_prices,
    payment_type_infer,
)
from billing.services.subscription_items import subscription_items_parse
from core.errors import Conflict, InvalidRequest
from customers import selectors as customer_selectors
from projects.models import Project

# A checkout's kind is the payment type it creates.
CHECKOUT_KINDS = (Payment.Type.SUBSCRIPTION, Payment.Type.ONE_TIME, Payment.Type.CART)


def _metadata(metadata: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in (metadata or {}).items()))


def _single_price_lines(*, project: Project, kind: str, items: Sequence[tuple[str, int]]) -> list[Line]:
    """A subscription or item checkout: one price, named by `price`."""
    if len(items) != 1:
        raise ValueError(f"A {kind} checkout takes exactly one price.")
    lines = lines_for_prices(project=project, items=list(items), param="price")
    price = lines[0].price
    if kind == Payment.Type.SUBSCRIPTION and (not price or not price.is_recurring):
        raise InvalidRequest(
            "A subscription checkout needs a recurring price.", code="price_not_recurring", param="price"
        )
    if kind == Payment.Type.ONE_TIME and price and price.is_recurring:
        raise InvalidRequest(
            "An item checkout needs a one-time price.", code="price_not_one_time", param="price"
        )
    return lines


def _subscription_items_lines(
    *, project: Project, customer_id: str, items: Sequence[tuple[str, int | None]]
) -> list[Line]:
    """A subscription checkout of several `items` (a base plan, add-ons, metered prices): see
    `billing.services.subscription_items`. A metered item has no quantity and costs nothing now."""
    specs = subscription_items_parse(project=project, items=items)
    # Refused here already so that `param` names the item (checked again under the customer's lock).
    customer = customer_selectors.customer_find(project=project, external_id=customer_id)
    if customer is not None:
        for index, spec in enumerate(specs):
            live = selectors.live_subscription_to(customer=customer, product=spec.price.product)
            if live is not None:
                raise Conflict(
                    f"The customer already has a live subscription to {spec.price.product.key!r} ({live.pk}).",
                    code="already_subscribed",
                    param=f"items[{index}].price",
                )
    return [
        Line(
            price=spec.price,
            quantity=spec.quantity or 1,
            unit_amount=spec.price.unit_amount,
            currency=spec.price.currency,
        )
        for spec in specs
    ]


def _cart_lines(
    *, project: Project, customer: str, cart_id: str | None, items: Sequence[tuple[str, int]]
) -> tuple[list[Line], Cart | None]:
    """A cart checkout: an open cart of the customer's, or items; one-time prices only."""
    cart = None
    if cart_id and items:
        raise InvalidRequest("Give either cart or items, not both.", code="parameter_conflict", param="items")
    if cart_id:
        cart = selectors.cart_get(project=project, cart_id=cart_id, param="cart")
        if cart.customer.external_id != customer:
            raise InvalidRequest(
                "This cart belongs to another customer.", code="cart_customer_mismatch", param="cart"
            )
        if cart.status != Cart.Status.OPEN:
            raise Conflict("This cart was already checked out.", code="cart_checked_out", param="cart")
        cart_items = cart_lines(cart)
        if not cart_items:
            raise InvalidRequest("The cart is empty.", code="cart_empty", param="cart")
        lines = lines_for_prices(project=project, items=cart_items, param="cart")
    elif items:
        lines = lines_for_prices(project=project, items=list(items))
    else:
        raise InvalidRequest("Give a cart or items.", code="parameter_missing", param="items")
    if any(line.price and line.price.is_recurring for line in lines):
        raise InvalidRequest("A cart holds one-time prices only.", code="price_not_one_time", param="items")
    return lines, cart


def checkout_start(
    *,
    project: Project,
    kind: str,
    customer: str,
    success_url: str,
    cancel_url: str,
    items: Sequence[tuple[str, int]] = (),
    subscription_items: Sequence[tuple[str, int | None]] | None = None,
    cart_id: str | None = None,
    metadata: Mapping[str, str] | None = None,
    trial_days: int | None = None,
    automatic_tax: bool = False,
    idempotency_key: str = "",
    promotion_code: str | None = None,
    allow_promotion_codes: bool = False,
) -> Payment:
    """Starts a Stripe Checkout for `customer` (their external id) and returns its payment.

    `kind` is the payment type: `subscription` (one recurring price in `items`, or several in
    `subscription_items`, with optional `trial_days`), `one_time` (one one-time price in `items`) or `cart` (an
    open cart by `cart_id`, or `items`; not both).
    """
    if kind not in CHECKOUT_KINDS:
        raise ValueError(f"Unknown checkout kind {kind!r}.")
    cart = None
    if kind == Payment.Type.CART:
        lines, cart = _cart_lines(project=project, customer=customer, cart_id=cart_id, items=items)
    elif kind == Payment.Type.SUBSCRIPTION and subscription_items is not None:
        lines = _subscription_items_lines(project=project, customer_id=customer, items=subscription_items)
    else:
        lines = _single_price_lines(project=project, kind=kind, items=items)
    if automatic_tax:
        automatic_tax_validate(lines=lines, flow=Payment.Flow.CHECKOUT)
    payment, _ = payment_create(
        project=project,
        idempotency_key=idempotency_key,
        request=PaymentRequest(
            customer=customer,
            type=kind,
            flow=Payment.Flow.CHECKOUT,
            lines=tuple(lines),
            success_url=success_url,
            cancel_url=cancel_url,
            metadata=_metadata(metadata),
            trial_days=trial_days if kind == Payment.Type.SUBSCRIPTION else None,
            cart_id=cart.pk if cart else None,
            automatic_tax=automatic_tax,
            promotion_code=promotion_code or "",
            allow_promotion_codes=allow_promotion_codes,
        ),
    )
    return payment


def payment_submit(
    *,
    project: Project,
    customer: str,
    price: str | None = None,
    quantity: int = 1,
    items: Sequence[tuple[str, int]] | None = None,
    amount: int | None = None,
    currency: str | None = None,
    description: str = "",
    payment_type: str | None = None,
    flow: str | None = None,
    reference: str | None = None,
    success_url: str = "",
    cancel_url: str = "",
    metadata: Mapping[str, str] | None = None,
    trial_days: int | None = None,
    automatic_tax: bool = False,
    idempotency_key: str = "",
    promotion_code: str | None = None,
    allow_promotion_codes: bool = False,
) -> tuple[Payment, bool]:
    """`POST /payments`: a payment of exactly one of a `price` (× `quantity`), `items`, or `amount` + `currency`,
    by the project's default flow unless `flow` is given; the type is inferred from the lines unless `payment_type`
    is given. Returns (payment, created); a known `reference` or
    Idempotency-Key returns the existing payment."""
    given = {"price": price, "items": items, "amount": amount}
    if sum(value is not None for value in given.values()) != 1:
        raise InvalidRequest(
            "Give exactly one of price, items, or amount + currency.",
            code="parameter_conflict",
            param="price",
        )
    if amount is not None:
        if not currency:
            raise InvalidRequest(
                "currency is required with amount.", code="parameter_missing", param="currency"
            )
        lines = [Line(quantity=1, unit_amount=amount, currency=currency, description=description)]
    elif price is not None:
        lines = lines_for_prices(project=project, items=[(price, quantity)], param="price")
    else:
        if not items:
            raise InvalidRequest("items must not be empty.", code="parameter_missing", param="items")
        lines = lines_for_prices(project=project, items=list(items))
    payment_type = payment_type_infer(lines, payment_type)
    flow = flow or project.default_flow
    if flow == Payment.Flow.CHECKOUT:
        for name, url in (("success_url", success_url), ("cancel_url", cancel_url)):
            if not url:
                raise InvalidRequest(
                    f"{name} is required for the checkout flow.", code="parameter_missing", param=name
                )
    if automatic_tax:
        automatic_tax_validate(lines=lines, flow=flow)
    return payment_create(
        project=project,
        idempotency_key=idempotency_key,
        reference=reference,
        request=PaymentRequest(
            customer=customer,
            type=payment_type,
            flow=flow,
            lines=tuple(lines),
            success_url=success_url,
            cancel_url=cancel_url,
            description=description,
            metadata=_metadata(metadata),
            trial_days=trial_days,
            automatic_tax=automatic_tax,
            promotion_code=promotion_code or "",
            allow_promotion_codes=allow_promotion_codes,
        ),
    )
