"""Checkout and payments: what a customer is asked to pay, how, and what happened.

Every payment is created locally first (with its checkout session when the flow is Checkout), then started at
Stripe outside any transaction with idempotency keys derived from our ids, then the Stripe ids are stored by
compare-and-set. A Stripe failure leaves a `pending` payment without Stripe ids — it never claims success — and
a retry (same `reference`, or the expiry sweep) resumes or closes it without a second Stripe object.

- `requests`: a payment request, its lines, redirect URLs and type;
- `create`: creating a payment and starting it at Stripe (Checkout Session or PaymentIntent);
- `checkout`: the API's purchases — a checkout (`checkout_start`) or a `/payments` request (`payment_submit`) —
  checked and turned into a payment request;
- `transitions`: `payment_transition` and Stripe's PaymentIntent and Checkout Session states applied through it;
- `closing`: cancel and expiry;
- `refunds`: refunds sent once and settled on Stripe's status (events, retries, the sweep), charges' refunded
  amounts and disputes;
- `carts`: carts of one-time prices;
- `apis`, `urls`: `/customers`, `/checkout`, `/carts`, `/payments`, `/portal`.

The names other modules use are re-exported here: `from billing.payments import payment_transition`.
"""

from billing.payments.checkout import checkout_start, payment_submit
from billing.payments.closing import payment_cancel, payments_expire_due
from billing.payments.create import payment_create
from billing.payments.refunds import (
    DISPUTE_RANK,
    payment_apply_charge,
    payment_apply_dispute,
    payment_refund,
    payment_refunds_sync,
    refund_mirror,
    refunds_settle_sweep,
)
from billing.payments.requests import (
    Line,
    PaymentRequest,
    lines_for_prices,
    payment_type_infer,
    redirect_urls_validate,
)
from billing.payments.transitions import (
    intent_status,
    payment_apply_checkout,
    payment_apply_intent,
    payment_refresh,
    payment_transition,
)

__all__ = [
    "DISPUTE_RANK",
    "Line",
    "PaymentRequest",
    "checkout_start",
    "intent_status",
    "lines_for_prices",
    "payment_apply_charge",
    "payment_apply_checkout",
    "payment_apply_dispute",
    "payment_apply_intent",
    "payment_cancel",
    "payment_create",
    "payment_refresh",
    "payment_refund",
    "payment_refunds_sync",
    "payment_submit",
    "payment_transition",
    "payment_type_infer",
    "payments_expire_due",
    "redirect_urls_validate",
    "refund_mirror",
    "refunds_settle_sweep",
]
