"""Billing records (customers, catalog, checkout sessions, payments, subscriptions, invoices, refunds).

Filled in by the catalog/checkout/payments work (issue #4) and the Stripe lifecycle work (issue #5).
"""
