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
"""
