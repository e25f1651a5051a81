"""One emulated Stripe account (one secret key): its store, lock, idempotency cache and backends, and the
event emission every state change goes through.

Backends (:class:`BaseBackend` subclasses, one per service, in ``<service>/models.py`` or a ``models/``
package) are stateless views over ``account.store``; they are created lazily per account by
``account.backend(SomeBackend)``, which is also how one service reaches another (prices ask
``ProductsBackend`` for their product).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, TypeVar

from stripe_emulator.core import ids
from stripe_emulator.core.context import current_request, current_test_clock
from stripe_emulator.core.idempotency import IdempotencyCache
from stripe_emulator.core.store import Store, StripeObject, clone
from stripe_emulator.core.version import API_VERSION
from stripe_emulator.core.webhooks import Delivery, matching_endpoint_ids

if TYPE_CHECKING:
    from stripe_emulator.core.emulator import Emulator

B = TypeVar("B", bound="BaseBackend")


class Account:
    def __init__(
        self,
        emulator: Emulator,
        api_key: str,
        *,
        account_id: str | None = None,
        created: int | None = None,
        store: Store | None = None,
        idempotency: IdempotencyCache | None = None,
        api_version: str | None = None,
    ) -> None:
        self.emulator = emulator
        self.api_key = api_key
        self.id = account_id or ids.id_for("account")
        # When the key was first used: the ``created`` of ``GET /v1/account``.
        self.created = created if created is not None else emulator.clock.now()
        # Re-entrant: a handler may call another backend that takes the lock again. Never held while a webhook
        # is sent (see core.webhooks), so receivers may call back into the emulator.
        self.lock = threading.RLock()
        self.store = store or Store()
        self.idempotency = idempotency or IdempotencyCache()
        # The account's default API version: events are created at it, and delivered at it to an endpoint
        # registered without an `api_version` (an account opened long ago has an old one).
        self.api_version = api_version or emulator.account_api_version or API_VERSION
        self._backends: dict[type[BaseBackend], BaseBackend] = {}

    def backend(self, cls: type[B]) -> B:
        backend = self._backends.get(cls)
        if backend is None:
            backend = cls(self)
            self._backends[cls] = backend
        assert isinstance(backend, cls)
        return backend

    def now(self) -> int:
        """The emulator's clock, or the frozen time of the test clock in force (see core.context)."""
        scope = current_test_clock()
        return scope.now if scope is not None else self.emulator.clock.now()

    def test_clock_of(self, customer_id: str | None) -> str | None:
        """The test clock a customer was created on (``None``: it follows the emulator's clock)."""
        customer = self.store.get("customer", customer_id) if customer_id else None
        return customer.get("test_clock") if customer is not None else None

    def on_current_clock(self, customer_id: str | None) -> bool:
        """Whether a customer's objects move with the clock in force: time-driven hooks skip the others, so
        the emulator's ``advance`` leaves test-clock customers alone and a test clock's advance touches only
        its own customers."""
        scope = current_test_clock()
        return self.test_clock_of(customer_id) == (scope.clock_id if scope is not None else None)

    # -- events --------------------------------------------------------------------------------------------

    def emit(
        self, event_type: str, obj: StripeObject, *, previous_attributes: dict[str, Any] | None = None
    ) -> StripeObject:
        """Record an event whose ``data.object`` is ``obj`` exactly as a retrieve renders it now, and queue
        its delivery to every enabled endpoint subscribed to ``event_type``."""
        request = current_request()
        data: dict[str, Any] = {"object": clone(obj)}
        if previous_attributes is not None:
            data["previous_attributes"] = previous_attributes
        endpoint_ids = matching_endpoint_ids(self.store, event_type)
        event: StripeObject = {
            "id": ids.id_for("event"),
            "object": "event",
            "api_version": self.api_version,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": len(endpoint_ids),
            "request": {
                "id": request.request_id if request else None,
                "idempotency_key": request.idempotency_key if request else None,
            },
            "type": event_type,
        }
        self.store.insert(event)
        deliveries = [Delivery(self.api_key, event["id"], endpoint_id) for endpoint_id in endpoint_ids]
        if request is not None:
            request.outbox.extend(deliveries)
        elif deliveries:
            self.emulator.webhooks.enqueue(deliveries)
        return event

    def emit_update(self, event_type: str, obj: StripeObject, before: StripeObject) -> StripeObject | None:
        """Emit ``<type>.updated`` with ``previous_attributes`` diffed from ``before`` (a :func:`clone` taken
        before mutating); nothing is emitted when nothing visible changed, as with Stripe."""
        previous = previous_attributes(before, clone(obj))
        if not previous:
            return None
        return self.emit(event_type, obj, previous_attributes=previous)

    # -- persistence ---------------------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": self.created,
            "api_version": self.api_version,
            "store": self.store.dump(),
            "idempotency": self.idempotency.dump(),
        }

    @classmethod
    def load(cls, emulator: Emulator, api_key: str, data: dict[str, Any]) -> Account:
        return cls(
            emulator,
            api_key,
            account_id=data.get("id"),
            created=data.get("created"),  # absent from state saved before accounts had one: now
            store=Store.load(data.get("store", {})),
            idempotency=IdempotencyCache.load(data.get("idempotency", {})),
            api_version=data.get("api_version"),  # absent from state saved before: the current version
        )


def previous_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Stripe's ``previous_attributes``: old values of changed fields; for nested hashes (metadata, address)
    only the changed sub-keys, with ``None`` for keys that did not exist before."""
    diff: dict[str, Any] = {}
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            diff[key] = previous_attributes(old, new)
        else:
            diff[key] = old
    return diff


class BaseBackend:
    """Base for a service's behaviour on one account. Subclasses add ``<noun>_<verb>`` methods that validate,
    mutate ``self.store`` and call ``self.emit``; they take Python values, never raw params (that is the
    wire layer's job in ``responses.py``)."""

    def __init__(self, account: Account) -> None:
        self.account = account

    @property
    def store(self) -> Store:
        return self.account.store

    def now(self) -> int:
        return self.account.now()

    def emit(
        self, event_type: str, obj: StripeObject, *, previous_attributes: dict[str, Any] | None = None
    ) -> StripeObject:
        return self.account.emit(event_type, obj, previous_attributes=previous_attributes)

    def emit_update(self, event_type: str, obj: StripeObject, before: StripeObject) -> StripeObject | None:
        return self.account.emit_update(event_type, obj, before)
