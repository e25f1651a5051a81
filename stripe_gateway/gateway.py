"""The one door to Stripe: the only module that imports `stripe`.

One `StripeClient` per Stripe account (the platform's, or a project's own encrypted key), with a pinned API
version, timeouts and network retries. Every write carries an idempotency key derived from our own object id,
so a retry never creates a second Stripe object. Stripe's errors become domain errors: card errors → 402 with
the decline code, Stripe unreachable or failing → 502/503 `payment_provider_error`.

Never call the gateway inside a database transaction: a slow or failing Stripe must not hold row locks, and a
rolled-back transaction cannot take back what Stripe already did.
"""

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple, TypeVar

import stripe
from django.conf import settings

from core.db import in_transaction
from core.errors import ApiError, InvalidRequest, ProviderError
from stripe_gateway.client import client_for
from stripe_gateway.errors import StripeObjectMissing, failed, retried_by_sdk


def stripe_id(value: Any) -> str:
    """The id of a Stripe reference, expanded (an object with an `id`) or not (the id itself); "" for none."""
    return str(value.get("id") or "") if isinstance(value, dict) else str(value or "")


def from_timestamp(value: Any) -> datetime | None:
    """A Stripe timestamp (Unix seconds) as an aware UTC datetime; None for none."""
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


logger = logging.getLogger(__name__)
T = TypeVar("T")


def idempotency_key(*parts: str) -> str:
    """A deterministic Stripe idempotency key from our ids and the operation (`payment:pay_x:session`)."""
    raw = ":".join(parts)
    return raw if len(raw) <= 200 else hashlib.sha256(raw.encode()).hexdigest()


class Written(NamedTuple):
    """Stripe's answer to a write, and whether Stripe replayed it: an answer saved for the same idempotency key
    and request, so this request changed nothing."""

    object: dict[str, Any]
    replayed: bool


def written_of(answer: Any) -> Written:
    response = getattr(answer, "last_response", None)
    headers = getattr(response, "headers", None) or {}
    return Written(
        answer.to_dict(for_json=True), str(headers.get("Idempotent-Replayed", "")).lower() == "true"
    )


class StripeGateway:
    """Calls to one Stripe account. Methods take and return plain data; Stripe objects stay inside."""

    def __init__(self, *, secret_key: str, publishable_key: str = "") -> None:
        self.secret_key = secret_key
        self.publishable_key = publishable_key

    @property
    def client(self) -> stripe.StripeClient:
        return client_for(self.secret_key)

    @staticmethod
    def _outside_transaction() -> None:
        if in_transaction():
            raise RuntimeError("Stripe must not be called inside a database transaction.")

    def call(self, operation: Callable[[Any], T]) -> T:
        # The SDK types params as TypedDicts; the gateway builds them as dicts, so the client is used untyped.
        self._outside_transaction()
        try:
            return operation(self.client)
        except stripe.StripeError as exc:
            raise failed(exc) from exc

    def call_dict(self, operation: Callable[[Any], stripe.StripeObject]) -> dict[str, Any]:
        """`call` an operation answering one Stripe object, and answer that object as plain JSON-ready data."""
        return self.call(operation).to_dict(for_json=True)

    def sent_once(self, operation: Callable[[Any, dict[str, Any]], Any], *, key: str) -> dict[str, Any]:
        """Sends a write under the idempotency key `key` (`operation(client, request_options)`). Callers send only
        what Stripe does not have yet, so Stripe replaying its saved answer (`Idempotent-Replayed`) to the first
        attempt means the same request was made before and undone since (A → B → A): it is sent again under a
        key of its own. A replay answering a retry of this very write is the first attempt's answer, lost after
        Stripe acted: the write is done, and sent again it would overwrite whatever changed meanwhile. So the
        first attempt goes without the SDK's retries; when the SDK would have retried it (connection lost, 409,
        5xx), its retries follow under the same key. One lost answer is one more request, never a new key."""
        self._outside_transaction()
        try:
            first = operation(self.client, {"idempotency_key": key, "max_network_retries": 0})
        except stripe.StripeError as exc:
            retries = int(settings.STRIPE_MAX_NETWORK_RETRIES)
            if not retries or not retried_by_sdk(exc):
                raise failed(exc) from exc
            time.sleep(stripe.HTTPClient.INITIAL_DELAY)  # the SDK's pause before its first retry
            options = {"idempotency_key": key, "max_network_retries": retries - 1}
            return written_of(self.call(lambda c: operation(c, options))).object
        written = written_of(first)
        if written.replayed:
            fresh = f"{key}:{uuid.uuid4().hex}"
            written = written_of(self.call(lambda c: operation(c, {"idempotency_key": fresh})))
        return written.object

    def state_update(
        self, operation: Callable[[Any, dict[str, Any]], Any], *, object_id: str, params: Any
    ) -> dict[str, Any]:
        """An update that sets a Stripe object to absolute values (a name, `active`, metadata), keyed by the
        object and the values: retries of one update are one write, and sending the same values again later
        is safe (`sent_once`)."""
        digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:32]
        return self.sent_once(operation, key=idempotency_key("update", object_id, digest))

    # --- products and prices -------------------------------------------------------------------------
    def product_upsert(
        self,
        *,
        stripe_product_id: str,
        name: str,
        description: str,
        active: bool,
        metadata: dict[str, str],
        idem: str,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"name": name, "active": active, "metadata": metadata}
        if description:
            params["description"] = description
        if stripe_product_id:
            return self.product_update(stripe_product_id, params)
        return self.call_dict(lambda c: c.v1.products.create(params, {"idempotency_key": idem}))

    def price_create(self, *, params: dict[str, Any], idem: str) -> dict[str, Any]:
        return self.call_dict(lambda c: c.v1.prices.create(params, {"idempotency_key": idem}))

    def price_update(self, stripe_price_id: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.state_update(
            lambda c, options: c.v1.prices.update(stripe_price_id, params, options),
            object_id=stripe_price_id,
            params=params,
        )

    def meter_create(self, *, display_name: str, event_name: str, idem: str) -> dict[str, Any]:
        params = {
            "display_name": display_name,
            "event_name": event_name,
            "default_aggregation": {"formula": "sum"},
            "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
            "value_settings": {"event_payload_key": "value"},
        }
        return self.call_dict(lambda c: c.v1.billing.meters.create(params, {"idempotency_key": idem}))

    def meters_by_event_name(self, event_name: str) -> list[dict[str, Any]]:
        result = self.call(lambda c: c.v1.billing.meters.list({"limit": 100}))
        return [
            m.to_dict(for_json=True)
            for m in result.auto_paging_iter()
            if m.to_dict(for_json=True).get("event_name") == event_name
        ]

    # --- catalog sync (catalog.services.stripe_sync) ----------------------------------------------------
    def product_ensure(self, *, product_id: str, params: dict[str, Any], idem: str) -> dict[str, Any]:
        """Creates the Stripe product under our own id (`id=product_id`), or updates it if it exists already.

        Our id as the Stripe id makes the create naturally idempotent beyond Stripe's 24-hour idempotency
        window, and across retries whose parameters changed meanwhile (a renamed product).
        """
        # Stripe refuses empty strings on create (they mean "unset", which only an update can do).
        create_params = {k: v for k, v in params.items() if v != ""}
        try:
            return self.call_dict(
                lambda c: c.v1.products.create({**create_params, "id": product_id}, {"idempotency_key": idem})
            )
        except ProviderError as exc:
            cause = exc.__cause__
            if not (
                isinstance(cause, stripe.InvalidRequestError) and cause.code == "resource_already_exists"
            ):
                raise
        return self.product_update(product_id, params)

    def product_update(self, stripe_product_id: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.state_update(
            lambda c, options: c.v1.products.update(stripe_product_id, params, options),
            object_id=stripe_product_id,
            params=params,
        )

    def product_retrieve(self, stripe_product_id: str) -> dict[str, Any]:
        return self.call_dict(lambda c: c.v1.products.retrieve(stripe_product_id))

    def price_retrieve(self, stripe_price_id: str) -> dict[str, Any]:
        return self.call_dict(lambda c: c.v1.prices.retrieve(stripe_price_id))

    def prices_by_lookup_key(self, lookup_key: str) -> list[dict[str, Any]]:
        """The price holding `lookup_key` (at most one: Stripe keeps lookup keys unique per account), with its
        tiers (Stripe returns a price's `tiers` only when expanded)."""
        result = self.call(
            lambda c: c.v1.prices.list({"lookup_keys": [lookup_key], "limit": 10, "expand": ["data.tiers"]})
        )
        return [price.to_dict(for_json=True) for price in result.data]

    # --- coupons and promotion codes (billing.discounts) ---------------------------------------------------
    def coupon_create(self, *, params: dict[str, Any], idem: str) -> dict[str, Any]:
        """Creates the Stripe coupon under our own id (`params["id"]`); one that exists already (an earlier
        attempt whose answer was lost) is adopted."""
        try:
            return self.call_dict(lambda c: c.v1.coupons.create(params, {"idempotency_key": idem}))
        except ProviderError as exc:
            cause = exc.__cause__
            if not (
                isinstance(cause, stripe.InvalidRequestError) and cause.code == "resource_already_exists"
            ):
                raise
        return self.call_dict(lambda c: c.v1.coupons.retrieve(params["id"]))

    def coupon_delete(self, stripe_coupon_id: str) -> None:
        """Stripe ignores idempotency keys on DELETE; a coupon already gone is what we wanted."""
        try:
            self.call(lambda c: c.v1.coupons.delete(stripe_coupon_id))
        except StripeObjectMissing:
            return

    def promotion_code_create(self, *, params: dict[str, Any], idem: str) -> dict[str, Any]:
        return self.call_dict(lambda c: c.v1.promotion_codes.create(params, {"idempotency_key": idem}))

    def promotion_code_retrieve(self, stripe_promotion_code_id: str) -> dict[str, Any]:
        return self.call_dict(
            lambda c: c.v1.promotion_codes.retrieve(
                stripe_promotion_code_id, {"expand": ["promotion.coupon"]}
            )
        )

    def promotion_code_update(self, stripe_promotion_code_id: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.state_update(
            lambda c, options: c.v1.promotion_codes.update(stripe_promotion_code_id, params, options),
            object_id=stripe_promotion_code_id,
            params=params,
        )

    def subscription_discounts(self, subscription_id: str) -> list[dict[str, Any]]:
        """The subscription's current discounts, expanded (events carry only their ids)."""
        subscription = self.call_dict(
            lambda c: c.v1.subscriptions.retrieve(subscription_id, {"expand": ["discounts"]})
        )
        return [d for d in subscription.get("discounts") or [] if isinstance(d, dict)]

    # --- customers -----------------------------------------------------------------------------------
    def customer_create(
        self, *, email: str, name: str, metadata: dict[str, str], idem: str, test_clock: str = ""
    ) -> dict[str, Any]:
        """`test_clock`: the Stripe test clock the customer lives on (set only at creation, as Stripe allows)."""
        params: dict[str, Any] = {"metadata": metadata}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        if test_clock:
            params["test_clock"] = test_clock
        return self.call_dict(lambda c: c.v1.customers.create(params, {"idempotency_key": idem}))

    def customer_retrieve(self, stripe_customer_id: str) -> dict[str, Any]:
        return self.call_dict(lambda c: c.v1.customers.retrieve(stripe_customer_id))

    def customer_saved_card(self, stripe_customer_id: str) -> str:
        """The card to charge a customer off session: its default payment method (`invoice_settings`), else its
        newest card; "" when it has none."""
        customer = self.customer_retrieve(stripe_customer_id)
        default = stripe_id((customer.get("invoice_settings") or {}).get("default_payment_method"))
        if default:
            return default
        cards = self.call(
            lambda c: c.v1.payment_methods.list({"customer": stripe_customer_id, "type": "card", "limit": 1})
        )
        return str(cards.data[0].id) if cards.data else ""

    def customer_update(self, stripe_customer_id: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.state_update(
            lambda c, options: c.v1.customers.update(stripe_customer_id, params, options),
            object_id=stripe_customer_id,
            params=params,
        )

    def customer_delete(self, stripe_customer_id: str) -> None:
        """Deletes the customer at Stripe for good (Stripe keeps a `deleted` tombstone; its invoices, charges and
        refunds stay, without the person). Stripe ignores idempotency keys on DELETE; a customer already gone is
        what we wanted."""
        try:
            self.call(lambda c: c.v1.customers.delete(stripe_customer_id))
        except StripeObjectMissing:
            return

    # --- checkout, payment intents, refunds ----------------------------------------------------------
    def checkout_session_create(self, *, params: dict[str, Any], idem: str) -> dict[str, Any]:
        return self.call_dict(lambda c: c.v1.checkout.sessions.create(params, {"idempotency_key": idem}))

    def checkout_session_retrieve(self, session_id: str) -> dict[str, Any]:
        return self.call_dict(lambda c: c.v1.checkout.sessions.retrieve(session_id))

    def checkout_session_expire(self, session_id: str, *, idem: str) -> dict[str, Any]:
        return self.call_dict(
            lambda c: c.v1.checkout.sessions.expire(session_id, options={"idempotency_key": idem})
        )

    def payment_intent_create(self, *, params: dict[str, Any], idem: str) -> dict[str, Any]:
        return self.call_dict(lambda c: c.v1.payment_intents.create(params, {"idempotency_key": idem}))

    def payment_intent_charge(self, *, params: dict[str, Any], idem: str) -> dict[str, Any]:
        """Creates and confirms a PaymentIntent off session (a saved card, the customer absent). A decline is
        Stripe's 402 `card_error`, whose body carries the failed intent: that intent is the answer (its
        `last_payment_error` says why), as a succeeded one is. Replays under `idem` answer the same."""
        try:
            return self.call_dict(lambda c: c.v1.payment_intents.create(params, {"idempotency_key": idem}))
        except ApiError as error:
            cause = error.__cause__
            body = getattr(cause, "json_body", None) or {}
            intent = (body.get("error") or {}).get("payment_intent")
            if isinstance(cause, stripe.CardError) and isinstance(intent, dict) and intent.get("id"):
                return intent
            raise

    def payment_intent_retrieve(self, payment_intent_id: str) -> dict[str, Any]:
        return self.call_dict(lambda c: c.v1.payment_intents.retrieve(payment_intent_id))

    def payment_intent_cancel(self, payment_intent_id: str, *, idem: str) -> dict[str, Any]:
        return self.call_dict(
            lambda c: c.v1.payment_intents.cancel(
                payment_intent_id, {"cancellation_reason": "abandoned"}, {"idempotency_key": idem}
            )
        )

    def refund_create(
        self,
        *,
        payment_intent: str,
        amount: int | None,
        reason: str | None,
        metadata: dict[str, str],
        idem: str,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"payment_intent": payment_intent, "metadata": metadata}
        if amount is not None:
            params["amount"] = amount
        if reason:
            params["reason"] = reason
        return self.call_dict(lambda c: c.v1.refunds.create(params, {"idempotency_key": idem}))

    def refunds_of(self, payment_intent: str) -> list[dict[str, Any]]:
        """Every refund of a PaymentIntent at Stripe (newest first), whoever made it."""
        return list(self.list_all("refunds", {"payment_intent": payment_intent, "limit": 100}))

    # --- portal --------------------------------------------------------------------------------------
    def portal_configuration_upsert(
        self, *, configuration_id: str, params: dict[str, Any], idem: str
    ) -> dict[str, Any]:
        if configuration_id:
            return self.state_update(
                lambda c, options: c.v1.billing_portal.configurations.update(
                    configuration_id, params, options
                ),
                object_id=configuration_id,
                params=params,
            )
        return self.call_dict(
            lambda c: c.v1.billing_portal.configurations.create(params, {"idempotency_key": idem})
        )

    def portal_session_create(
        self, *, customer: str, return_url: str, configuration: str, idem: str = ""
    ) -> dict[str, Any]:
        params = {"customer": customer, "return_url": return_url, "configuration": configuration}
        # Each call is a new session (a link for one visit): without an operation's key, a fresh key only makes
        # the SDK's own retries one create.
        idem = idem or idempotency_key("portal-session", customer, uuid.uuid4().hex)
        return self.call_dict(
            lambda c: c.v1.billing_portal.sessions.create(params, {"idempotency_key": idem})
        )

    def invoice_retrieve(self, invoice_id: str) -> dict[str, Any]:
        return self.call_dict(lambda c: c.v1.invoices.retrieve(invoice_id))

    def invoice_void(self, invoice_id: str, *, idem: str) -> dict[str, Any]:
        """`POST /v1/invoices/{id}/void`: final; under a key of the invoice's own, so every attempt to void it is
        one write (a retry whose answer was lost gets Stripe's replay)."""
        return self.call_dict(lambda c: c.v1.invoices.void_invoice(invoice_id, {}, {"idempotency_key": idem}))

    def invoice_mark_uncollectible(self, invoice_id: str, *, idem: str) -> dict[str, Any]:
        """`POST /v1/invoices/{id}/mark_uncollectible`, under a key of the invoice's own (as `invoice_void`)."""
        return self.call_dict(
            lambda c: c.v1.invoices.mark_uncollectible(invoice_id, {}, {"idempotency_key": idem})
        )

    def invoice_payments_list(self, *, invoice: str = "", payment_intent: str = "") -> list[dict[str, Any]]:
        """The payment attempts of an invoice, or the invoice payment of a PaymentIntent (newest first)."""
        params: dict[str, Any] = {"limit": 10}
        if invoice:
            params["invoice"] = invoice
        if payment_intent:
            params["payment"] = {"type": "payment_intent", "payment_intent": payment_intent}
        listed = self.call(lambda c: c.v1.invoice_payments.list(params))
        return [record.to_dict(for_json=True) for record in listed.data]

    def clock(self, test_clock: str = "") -> int:
        """Stripe's time for the objects of a customer on `test_clock` (that clock's `frozen_time`), or for every
        other object of the account (the `Date` Stripe answers with). A state read after this is at least as new
        as it: events created up to it are not newer than that state. Never the newest event's `created`: an
        account's events of a test clock that runs ahead carry the clock's time, which other customers' objects
        never reach."""
        if test_clock:
            return int(self.call(lambda c: c.v1.test_helpers.test_clocks.retrieve(test_clock)).frozen_time)
        page = self.call(lambda c: c.v1.events.list({"limit": 1}))
        response = getattr(page, "last_response", None)
        stamped = str((getattr(response, "headers", None) or {}).get("Date", ""))
        if stamped:
            return int(parsedate_to_datetime(stamped).timestamp())
        return int(page.data[0].created) if page.data else 0  # a Stripe without `Date` (never seen)

    def event_newest(self) -> dict[str, Any] | None:
        """The account's newest event (None: it has none): one read."""
        page = self.call(lambda c: c.v1.events.list({"limit": 1}))
        return page.data[0].to_dict(for_json=True) if page.data else None

    def test_clocks_now(self) -> dict[str, int]:
        """Every test clock of the account with its `frozen_time` (test mode; {} in live mode, which has none)."""
        return {str(clock["id"]): int(clock["frozen_time"]) for clock in self.test_clocks_list()}

    def test_clocks_list(self) -> list[dict[str, Any]]:
        """Every test clock of the account (test mode; [] in live mode, which has none)."""
        if not self.test_mode:
            return []
        return list(self.list_all("test_helpers.test_clocks", {"limit": 100}))

    # --- test clocks (test mode only: billing.testclocks) ------------------------------------------------
    @property
    def test_mode(self) -> bool:
        """Whether this account's key is a test-mode key: only test mode has test clocks."""
        return self.secret_key.startswith(("sk_test_", "rk_test_"))

    def test_clock_create(self, *, frozen_time: int, name: str, idem: str) -> dict[str, Any]:
        params: dict[str, Any] = {"frozen_time": frozen_time}
        if name:
            params["name"] = name
        return self.call_dict(
            lambda c: c.v1.test_helpers.test_clocks.create(params, {"idempotency_key": idem})
        )

    def test_clock_retrieve(self, test_clock_id: str) -> dict[str, Any]:
        """The clock, or Stripe's `{"id", "deleted": true}` once Stripe deleted it (30 days after creation)."""
        return self.call_dict(lambda c: c.v1.test_helpers.test_clocks.retrieve(test_clock_id))

    def test_clock_advance(self, test_clock_id: str, *, frozen_time: int, idem: str) -> dict[str, Any]:
        """Starts the advance (Stripe answers `advancing` and finishes on its own). Stripe's refusal of the
        target time (not after the clock's, or past two intervals of its shortest subscription) is the
        caller's 400 on `frozen_time`, with Stripe's reason."""
        params = {"frozen_time": frozen_time}
        try:
            return self.call_dict(
                lambda c: c.v1.test_helpers.test_clocks.advance(
                    test_clock_id, params, {"idempotency_key": idem}
                )
            )
        except ProviderError as exc:
            cause = exc.__cause__
            if isinstance(cause, stripe.InvalidRequestError) and cause.param == "frozen_time":
                raise InvalidRequest(
                    f"Stripe refused to advance the clock: {cause.user_message}",
                    code="test_clock_advance_refused",
                    param="frozen_time",
                ) from exc
            raise

    def test_clock_delete(self, test_clock_id: str) -> None:
        """Deletes the clock and, at Stripe, every customer on it. Stripe ignores idempotency keys on DELETE;
        a clock already gone is what we wanted."""
        try:
            self.call(lambda c: c.v1.test_helpers.test_clocks.delete(test_clock_id))
        except StripeObjectMissing:
            return

    # --- subscriptions -----------------------------------------------------------------------------------
    def subscription_retrieve(self, subscription_id: str) -> dict[str, Any]:
        return self.call_dict(lambda c: c.v1.subscriptions.retrieve(subscription_id))

    def subscription_create(self, *, params: dict[str, Any], idem: str) -> dict[str, Any]:
        """`POST /v1/subscriptions`: under a key derived from our ids, so a retry whose answer was lost gets
        Stripe's replay of the same subscription instead of a second one."""
        return self.call_dict(lambda c: c.v1.subscriptions.create(params, {"idempotency_key": idem}))

    def subscription_update(
        self, subscription_id: str, *, params: dict[str, Any], idem: str, operation: bool = False
    ) -> dict[str, Any]:
        """`operation`: `idem` is a tenant operation's own key, so Stripe's replay is that operation's first
        attempt answered again (done), not a state undone since (`sent_once`)."""
        if operation:
            return self.call_dict(
                lambda c: c.v1.subscriptions.update(subscription_id, params, {"idempotency_key": idem})
            )
        return self.sent_once(
            lambda c, options: c.v1.subscriptions.update(subscription_id, params, options), key=idem
        )

    def invoice_preview(self, *, params: dict[str, Any]) -> dict[str, Any]:
        """`POST /v1/invoices/create_preview`: the invoice a subscription change would create. A read (Stripe
        creates nothing), so no idempotency key."""
        return self.call_dict(lambda c: c.v1.invoices.create_preview(params))

    def subscription_cancel(
        self, subscription_id: str, *, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """`DELETE /v1/subscriptions/{id}` (`params`: `invoice_now`, `prorate`): Stripe ignores idempotency keys
        on a DELETE (it takes them on POSTs only), and refuses to cancel a canceled subscription
        (`resource_missing`) — which is what a retry of a cancel whose answer was lost meets, the SDK's own
        retries included. So a refusal is answered by reading the subscription: canceled (by that first
        attempt, or anyone) is what was asked; its final invoice was made by that attempt."""
        try:
            return self.call_dict(lambda c: c.v1.subscriptions.cancel(subscription_id, params or {}))
        except StripeObjectMissing:
            live = self.subscription_retrieve(subscription_id)
            if live.get("status") not in ("canceled", "incomplete_expired"):
                raise
            return live

    def subscription_resume(
        self, subscription_id: str, *, params: dict[str, Any], idem: str, operation: bool = False
    ) -> dict[str, Any]:
        if operation:  # as `subscription_update`
            return self.call_dict(
                lambda c: c.v1.subscriptions.resume(subscription_id, params, {"idempotency_key": idem})
            )
        return self.sent_once(
            lambda c, options: c.v1.subscriptions.resume(subscription_id, params, options), key=idem
        )

    # --- usage ---------------------------------------------------------------------------------------------
    def meter_event_create(self, *, params: dict[str, Any], idem: str) -> dict[str, Any]:
        return self.call_dict(lambda c: c.v1.billing.meter_events.create(params, {"idempotency_key": idem}))

    # --- webhook endpoints -------------------------------------------------------------------------------
    def webhook_endpoint_update(self, endpoint_id: str, *, params: dict[str, Any]) -> dict[str, Any]:
        return self.state_update(
            lambda c, options: c.v1.webhook_endpoints.update(endpoint_id, params, options),
            object_id=endpoint_id,
            params=params,
        )

    # --- generic reads (reconciliation, webhook re-fetch) --------------------------------------------
    def list_all(self, resource: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        service: Any = self.client.v1
        for part in resource.split("."):
            service = getattr(service, part)
        page = self.call(lambda c: service.list(params or {"limit": 100}))
        items = page.auto_paging_iter()
        while True:  # every page after the first is a call too: its failure is a domain error as well
            try:
                item = next(items)
            except StopIteration:
                return
            except stripe.StripeError as exc:
                raise failed(exc) from exc
            yield item.to_dict(for_json=True)


# Stripe accounts are named "platform" (the platform's own) or by the id of a project with its own Stripe key.
PLATFORM_ACCOUNT = "platform"


def stripe_account_of(project: Any) -> str:
    return str(project.pk) if project.stripe_secret_key else PLATFORM_ACCOUNT


def platform_gateway() -> StripeGateway:
    return StripeGateway(
        secret_key=settings.STRIPE_SECRET_KEY, publishable_key=settings.STRIPE_PUBLISHABLE_KEY
    )


def gateway_for(project: Any) -> StripeGateway:
    """The gateway of the project's own Stripe account when it has one, else the platform's."""
    if project.stripe_secret_key:
        return StripeGateway(
            secret_key=project.stripe_secret_key, publishable_key=project.stripe_publishable_key
        )
    return platform_gateway()
