"""Stripe's webhook signatures: whether a delivery's `Stripe-Signature` header signs its body."""

import time

import stripe


class WebhookSignatureInvalid(Exception):
    """The Stripe-Signature header does not match the body under any of our secrets, or is too old."""


WEBHOOK_TOLERANCE_SECONDS = 300


def webhook_verify(*, payload: bytes, header: str, secrets: list[str]) -> None:
    """Verifies Stripe's signature against each secret (several during a rotation)."""
    if not secrets:
        raise WebhookSignatureInvalid("no webhook signing secret is configured")
    # The SDK refuses a timestamp older than the tolerance only; one as far in the future is refused here too
    # (a replayed capture signed ahead of time, or a sender's clock gone wrong).
    if not header.isascii():  # the SDK compares with `hmac.compare_digest`, which raises on other text
        raise WebhookSignatureInvalid("the header is not ASCII")
    stamps = [part[2:] for part in header.split(",") if part.startswith("t=")]
    # At most 12 digits are read as a number (Python refuses to convert more than 4300); more is the future too.
    if (
        stamps
        and stamps[0].isdigit()
        and (len(stamps[0]) > 12 or int(stamps[0]) > time.time() + WEBHOOK_TOLERANCE_SECONDS)
    ):
        raise WebhookSignatureInvalid("timestamp more than 5 minutes in the future")
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(
                payload, header, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
            return
        except stripe.SignatureVerificationError:
            continue
    raise WebhookSignatureInvalid("signature mismatch or timestamp outside the tolerance")
