"""The billing API, split by area (each module one screen of purpose):

- `catalog.apis`: features, products, prices;
- `payments.apis`: customers, checkout, carts, payments, portal;
- `subscriptions.apis`: subscriptions and invoices.
"""
