"""The catalog: features, products (with the feature values they give), prices, and their Stripe mirror.

Every write follows ARCHITECTURE.md: validate everything first (a refused request leaves no trace, locally or at
Stripe), write the local row and its audit row in one transaction, then call Stripe outside any transaction
(`stripe_sync`), then store the Stripe id with a compare-and-set.

- `rules`: Stripe's limits, feature values and a price's terms, shared by the services, the API and `sync_catalog`;
- `pricing`: what a price charges for a quantity (per unit, or graduated / volume tiers), used by every amount;
- `selectors`: reads of features and of what a product gives;
- `snapshots`: what the audit log records of a feature, a product, a price;
- `features`, `products`, `prices`: the write services;
- `stripe_sync`: the Stripe products, prices and meters behind them;
- `sync`: the declarative `sync_catalog`, planned, then applied through the same services;
- `apis`, `urls`: `/features`, `/products`, `/prices`.
"""
