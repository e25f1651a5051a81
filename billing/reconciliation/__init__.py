"""Reconciliation: compare local mirrors with Stripe, record drift, and with `fix` apply Stripe's state through
the same functions the webhook processors use — then re-read the rows and record the drift `fixed` only if they
now match Stripe, else `failed` with what still differs.

Pages through each Stripe account Tollgate uses (the platform's, and projects' own), within Stripe's read rate
limit. Checked: subscriptions (status, price, quantity, cancellation, period), invoices (status, amounts, the
subscription they belong to) and every payment attempt Stripe has for them (`invoice_payments`: paid ones are
settled and linked to their PaymentIntent, failed ones recorded), every charge's refunded amount and every
dispute, and every open payment's Checkout Session or PaymentIntent.

Time is Stripe's, never ours: a repair marks the mirror with Stripe's time when the run started (the `Date` it
answers with, which may be ahead of ours), or, for an object whose customer is on a test clock, that clock's time
read then (`_Recording.as_of`): events older than the state read are not applied over it, and newer ones are. Not
the account's newest event: a clock that runs ahead stamps its events with its own time, which the other
customers' objects never reach.

- `reader`: Stripe reads of one account, paced under its read rate limit;
- `recording`: compare, record drift, repair, settle (what every check shares);
- `subscription_checks`, `invoice_checks`, `payment_checks`: the checks per resource;
- `run`: `reconcile`, one run over every account.
"""
