"""Coupons, promotion codes and the discounts they give (API.md "Discounts and tax").

- `services`: coupon and promotion code writes, synced to Stripe (our ids as idempotency keys);
  `promotion_code_redeemable`, the check every purchase path runs on a tenant's `promotion_code` before
  writing anything, and `stripe_discounts`, what it becomes in a Stripe request;
- `selectors`: reads, scoped to the project;
- `mirror`: the discount a Stripe subscription carries, as its mirror shows it;
- `apis` / `urls`: `/coupons`, `/promotion_codes`.
"""
