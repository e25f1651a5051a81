"""Inbound Stripe events and outbound tenant webhooks — issues #5 and #8."""
