"""The `Tollgate-Signature` scheme: `t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` (one v1 per valid secret)."""

import hashlib
import hmac


def signature(*, body: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(*, body: bytes, secrets: list[str], timestamp: int) -> str:
    return ",".join(
        [f"t={timestamp}", *(f"v1={signature(body=body, secret=s, timestamp=timestamp)}" for s in secrets)]
    )
