"""Entitlement writes: the recompute hook, purchases, grants, revocations, usage, consume/release and credits.

Hooks other apps call (billing, the Stripe processors):

- `entitlements_recompute(customer=)` — something that may change what a customer may use happened. Records
  `entitlements.updated` when the answer changed and bumps the customer's cache version on commit.
- `subscription_source_put(facts=)` — what a subscription holds and its state, as billing's mirror has it now
  (`sources`: the facts billing hands; entitlements never reads billing's tables).
- `purchase_record(customer=, payment=)` — a succeeded payment's one-time lines become purchases (and credit
  lots). Idempotent: the fulfilment key is (payment, line).
- `purchase_revoke(customer=, payment_id=, reason=)` — a full refund or a lost dispute ends what the payment
  granted and takes back its unspent credits. Idempotent.
- `plan_period_record(customer=, facts=)` / `plan_credits_revoke(customer=, payment_id=, reason=)` — the same for
  a subscription's paid period: what the invoice billed grants the plan's credits for the period (a
  `PlanPeriod` and its lots, keyed by the payment), and a full refund or a lost dispute takes back what is
  unspent. Idempotent.
- `payment_entitlements_apply(customer=, payment=, plan_period=)` — a payment's status or dispute changed:
  billing's one call, with the payment's facts, which picks among the above and a plain recompute.
- `meter_events_unskip(...)` — a subscription item on a meter was mirrored: the customer's skipped usage of it
  is reportable again.

Limits hold under concurrency because counters change only through one conditional SQL statement
(`UPDATE … SET used = used + n WHERE … AND used + n <= limit RETURNING used`) and credit lots are spent under
row locks. A denied consume rolls back, so it records nothing. On PostgreSQL a metered consume is one call of
`tollgate_metered_consume` (migration 0005), which takes its own event back when it refuses.

One module per sub-domain, imported by full path: `recompute` (the hook, a project's settings), `purchases`,
`plan_credits` (and the credit lot helpers), `sources` (the facts billing hands), `customers` (customers on first
sight), `grants` (and revocations), `counters` (atomic SQL on events and counters), `usage`, `consume` (and
release) and `meters` (usage marked reportable; billing's `meter_reports` reports it to Stripe).
"""
