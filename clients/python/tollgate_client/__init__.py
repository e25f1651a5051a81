"""The Python client for Tollgate. For now: verifying Tollgate's webhook deliveries (`tollgate_client.webhooks`)."""

from tollgate_client.webhooks import Event, SignatureVerificationError, construct_event

__all__ = ["Event", "SignatureVerificationError", "construct_event"]
