"""An offline, stateful emulator of the Stripe REST API (v1), built like moto: per-account backends hold
state, a wire layer parses and renders, a route table maps paths, errors are exceptions carrying Stripe's
codes. Served over HTTP by :mod:`stripe_emulator.server` and in-process by :mod:`stripe_emulator.sdk`.

No Django and no ``stripe`` imports here (the SDK adapter is the one exception, imported explicitly).
"""

from stripe_emulator.core.account import Account, BaseBackend
from stripe_emulator.core.emulator import Emulator
from stripe_emulator.core.errors import (
    APIError,
    AuthenticationError,
    CardError,
    IdempotencyError,
    InvalidRequestError,
    ResourceMissing,
    StripeError,
)
from stripe_emulator.core.routing import Request, Response, Route
from stripe_emulator.core.service import Service, Shape
from stripe_emulator.core.version import API_VERSION
from stripe_emulator.core.webhooks import DeliveryAttempt, Sender

__all__ = [
    "API_VERSION",
    "APIError",
    "Account",
    "AuthenticationError",
    "BaseBackend",
    "CardError",
    "DeliveryAttempt",
    "Emulator",
    "IdempotencyError",
    "InvalidRequestError",
    "Request",
    "ResourceMissing",
    "Response",
    "Route",
    "Sender",
    "Service",
    "Shape",
    "StripeError",
]
