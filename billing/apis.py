"""The billing API, split by area (each module one screen of purpose):

- `catalog.apis`: features, products, prices;
- `payment_apis`: customers, checkout, carts, payments, portal;
- `subscription_apis`: subscriptions and invoices.
"""
