"""The Python client for Tollgate's API.

    from tollgate_client import Tollgate

    tollgate = Tollgate(api_key, "https://tollgate.example.com")
    payment = tollgate.payments.create(customer="user-42", price="credits-1000", flow="checkout", ...)

Errors are `tollgate_client.errors` classes (all `TollgateError`); results are the dataclasses of
`tollgate_client.types`; webhook deliveries are verified with `tollgate_client.webhooks.construct_event`.
"""

from tollgate_client._version import __version__
from tollgate_client.client import Tollgate
from tollgate_client.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    CardError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    TollgateError,
)
from tollgate_client.pagination import Page, StreamPage
from tollgate_client.params import CreditNoteLineItem, LineItem, UsageEventParams
from tollgate_client.types import Event
from tollgate_client.webhooks import SignatureVerificationError, construct_event

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "CardError",
    "ConflictError",
    "CreditNoteLineItem",
    "Event",
    "InvalidRequestError",
    "LineItem",
    "NotFoundError",
    "Page",
    "PermissionDeniedError",
    "ProviderError",
    "RateLimitError",
    "SignatureVerificationError",
    "StreamPage",
    "Tollgate",
    "TollgateError",
    "UsageEventParams",
    "__version__",
    "construct_event",
]
