"""Usage, entitlements (checks, atomic consumption, grants and revocations) and credit balances."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from tollgate_client._transport import Transport
from tollgate_client.pagination import Page
from tollgate_client.params import UsageEventParams
from tollgate_client.resources._base import Resource, compact, path
from tollgate_client.types import (
    AutoRecharge,
    CreditBalance,
    CustomerEntitlements,
    EntitlementCheck,
    Entity,
    Grant,
    HoldAnswer,
    HoldUsage,
    Revocation,
    SpendCap,
    UsageBatchResult,
    UsageCorrection,
    UsageEvent,
    UsageSummary,
    UsageThreshold,
)


class Usage(Resource):
    def record(
        self,
        *,
        id: str,
        customer: str,
        feature: str,
        quantity: int | None = None,
        timestamp: str | datetime | None = None,
        properties: dict[str, Any] | None = None,
        model: str | None = None,
        dimensions: dict[str, int] | None = None,
        entity: str | None = None,
        no_billing_side_effects: bool | None = None,
        idempotency_key: str | None = None,
    ) -> UsageEvent:
        """Records usage of a `metered` feature (what happened: never refused for being over the limit; use
        `entitlements.consume` to enforce it). `id` is yours and makes the event idempotent: the same id again
        is counted once and answers the stored event. `timestamp` defaults to now; a late event counts in
        its period until the project's grace window has passed (older → `InvalidRequestError`
        `timestamp_too_old`). A feature with a usage formula takes `dimensions` (and `model`) instead of
        `quantity`: the answer's `quantity` is what the formula made of them, and `cost` what the call cost by
        your cost table in force at its time. `entity` (one of the customer's entities, on a metered feature with a
        limit per entity): the use counts on the entity's as well as the account's, stored as `properties.entity`.
        `no_billing_side_effects=True` backfills: the event may be stamped in any closed period (counted there) and
        is never sent to Stripe's meter."""
        body = compact(
            id=id,
            customer=customer,
            feature=feature,
            quantity=quantity,
            timestamp=timestamp,
            properties=properties,
            model=model,
            dimensions=dimensions,
            entity=entity,
            no_billing_side_effects=no_billing_side_effects,
        )
        return self._post(UsageEvent, "/usage", body, idempotency_key=idempotency_key)

    def record_batch(
        self, *, events: Sequence[UsageEventParams], idempotency_key: str | None = None
    ) -> UsageBatchResult:
        """Up to 1000 events at once, all or none: one invalid event rejects the whole batch with an
        `InvalidRequestError` whose `param` names it (`events[3].quantity`). Ids recorded before, or repeated
        within the batch, are counted once (`duplicates`): a batch whose answer was lost can be sent again."""
        body = compact(events=[dict(event) for event in events])
        return self._post(UsageBatchResult, "/usage/batch", body, idempotency_key=idempotency_key)

    def summary(self, *, customer: str, feature: str) -> UsageSummary:
        """The current period's usage of a `metered` feature: counted (`quantity`), sent to Stripe's meter
        (`billed_quantity`) or still to be (`pending_quantity`), and `amount_due_estimate`, what the customer's
        metered price will invoice for it at the period's end (0 when no subscription carries one)."""
        return self._get(UsageSummary, "/usage", {"customer": customer, "feature": feature})

    def correct(
        self,
        *,
        id: str,
        event: str,
        action: str,
        reason: str,
        quantity: int | None = None,
        invoiced: str | None = None,
        idempotency_key: str | None = None,
    ) -> UsageCorrection:
        """Voids (`action="void"`) or amends (`action="amend"`, to `quantity`) the recorded usage event `event`
        (your id), with a `reason` for the audit log. `id` is yours: the same id again answers the correction it
        made. The period's usage, thresholds and entitlement answers follow at once; Stripe's meter in the
        background (`stripe_meter.status` `pending`, then `adjusted`). `ConflictError` `usage_invoiced` when
        Stripe invoiced its period or received it more than 24 hours ago (nothing changed), unless
        `invoiced="credit"`: then the customer's next invoice is adjusted instead (`invoice_adjustment`)."""
        body = compact(id=id, event=event, action=action, reason=reason, quantity=quantity, invoiced=invoiced)
        return self._post(UsageCorrection, "/usage/corrections", body, idempotency_key=idempotency_key)

    def correction(self, id: str) -> UsageCorrection:
        """A usage correction by your id, with how far Stripe's meter is corrected."""
        return self._get(UsageCorrection, path("/usage/corrections/{}", id))


class Grants(Resource):
    def create(
        self,
        *,
        customer: str,
        feature: str,
        reason: str,
        value: Any = None,
        expires_at: str | datetime | None = None,
        priority: int | None = None,
        entity: str | None = None,
        idempotency_key: str | None = None,
    ) -> Grant:
        """On a `metered` or `allocation` feature `value` adds units to the limit (None: unlimited); on a
        `credits` one it grants that many credits (required), spent before lots of a higher `priority` (every
        other lot has 10), and, naming an `entity` of the customer's, that entity's own (spent only by uses naming
        it, before the account's); on a `boolean` or `static` one it sets the value (`boolean` defaults to
        True)."""
        body = compact(
            customer=customer,
            feature=feature,
            reason=reason,
            value=value,
            expires_at=expires_at,
            priority=priority,
            entity=entity,
        )
        return self._post(Grant, "/entitlements/grants", body, idempotency_key=idempotency_key)

    def delete(
        self, grant_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> Grant:
        """Ends the grant now (the unspent credits of a credits grant are taken back); the grant as it ended,
        `deleted` True. `reason` goes to the audit log."""
        url = path("/entitlements/grants/{}", grant_id)
        return self._delete_returning(Grant, url, compact(reason=reason), idempotency_key=idempotency_key)


class Revocations(Resource):
    def create(
        self,
        *,
        customer: str,
        feature: str,
        reason: str,
        expires_at: str | datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Revocation:
        """Takes the feature away whatever the customer bought or was granted, until `expires_at` (or for good)."""
        body = compact(customer=customer, feature=feature, reason=reason, expires_at=expires_at)
        return self._post(Revocation, "/entitlements/revocations", body, idempotency_key=idempotency_key)

    def delete(
        self, revocation_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> Revocation:
        """Ends the revocation now; the revocation as it ended, `deleted` True. `reason` goes to the audit log."""
        url = path("/entitlements/revocations/{}", revocation_id)
        return self._delete_returning(
            Revocation, url, compact(reason=reason), idempotency_key=idempotency_key
        )


class Holds(Resource):
    """Reservations: units set aside before the work that uses them, then confirmed, released or expired."""

    def create(
        self,
        *,
        id: str,
        customer: str,
        feature: str,
        quantity: int | None = None,
        expires_in: int | None = None,
        entity: str | None = None,
        model: str | None = None,
        dimensions: Mapping[str, int] | None = None,
        idempotency_key: str | None = None,
    ) -> HoldAnswer:
        """Sets `quantity` units of a `metered`, `credits` or `allocation` feature aside for `expires_in` seconds
        (default 600, at most 24 h): they count against the limit (`held` in checks) or leave the credit
        balance. Refused → `allowed` False, `hold` None and nothing recorded. `id` is your id for the hold (no
        `/`): the same id again answers the stored hold with `duplicate` True (`ConflictError`
        `idempotency_id_reused` if it named another customer, feature or quantity). `entity` (one of the
        customer's entities, on a metered feature with a limit per entity): the units are taken on the entity's
        limit as well as the account's, and given back to both. A model call's hold gives its estimated `model` and
        `dimensions` instead of `quantity` (a feature with a usage formula): it holds the units they come to now,
        and `hold.estimate` shows them priced."""
        body = compact(
            id=id,
            customer=customer,
            feature=feature,
            quantity=quantity,
            expires_in=expires_in,
            entity=entity,
            model=model,
            dimensions=dict(dimensions) if dimensions is not None else None,
        )
        return self._post(HoldAnswer, "/entitlements/holds", body, idempotency_key=idempotency_key)

    def retrieve(self, hold_id: str) -> HoldAnswer:
        """The hold (an expired one shows `expired`) and its feature's check now."""
        return self._get(HoldAnswer, path("/entitlements/holds/{}", hold_id))

    def confirm(
        self,
        hold_id: str,
        *,
        quantity: int | None = None,
        model: str | None = None,
        dimensions: Mapping[str, int] | None = None,
        idempotency_key: str | None = None,
    ) -> HoldAnswer:
        """Turns `quantity` held units (default: all) into usage and gives the rest back. A model call's confirm
        gives what it used, `model` and `dimensions`, instead: their units become usage (the event carries them
        and their cost; `hold.actual`), at most the hold's, and units beyond it are recorded as usage too
        (`hold.overrun`). The same confirm again answers `duplicate` True; `ConflictError` `hold_released`,
        `hold_expired` or `hold_confirmed` (another quantity or call) once the hold has ended otherwise."""
        url = path("/entitlements/holds/{}/confirm", hold_id)
        body = compact(
            quantity=quantity, model=model, dimensions=dict(dimensions) if dimensions is not None else None
        )
        return self._post(HoldAnswer, url, body, idempotency_key=idempotency_key)

    def report_usage(
        self,
        hold_id: str,
        *,
        events: Sequence[tuple[str, int] | Mapping[str, Any]],
        idempotency_key: str | None = None,
    ) -> HoldUsage:
        """Records uses made from the hold (a lease), `(id, quantity)` each or, for a model call,
        `{"id": …, "model": …, "dimensions": {…}}` (its units priced when reported, stored with their cost),
        idempotent by id like a consume:
        their units stop being held and become used. More than the hold has left → `InvalidRequestError`
        `usage_exceeds_hold`, nothing recorded; an id already used for another customer, feature or quantity →
        `ConflictError` `idempotency_id_reused`, nothing recorded; an ended hold → `ConflictError` `hold_expired`
        (…).
        `tollgate_client.leases.LeasedQuota` does this for you."""
        url = path("/entitlements/holds/{}/usage", hold_id)
        body = {
            "events": [
                dict(event) if isinstance(event, Mapping) else {"id": event[0], "quantity": event[1]}
                for event in events
            ]
        }
        return self._post(HoldUsage, url, body, idempotency_key=idempotency_key)

    def release(self, hold_id: str, *, idempotency_key: str | None = None) -> HoldAnswer:
        """Gives every held unit back. The same release again answers `duplicate` True; `ConflictError`
        `hold_confirmed` or `hold_expired` once the hold has ended otherwise."""
        url = path("/entitlements/holds/{}/release", hold_id)
        return self._post(HoldAnswer, url, {}, idempotency_key=idempotency_key)


class Thresholds(Resource):
    """A customer's own thresholds: usage of a metered feature (`usage.threshold_reached`, once per period) or the
    balance of a credits feature (`credits.threshold_reached`, once per funding)."""

    def create(
        self,
        *,
        customer: str,
        feature: str,
        percent: int | None = None,
        quantity: int | None = None,
        idempotency_key: str | None = None,
    ) -> UsageThreshold:
        """A threshold at `percent` of the limit or at `quantity` units used (one of the two) on a `metered`
        feature, or at a balance of `quantity` credits or `percent` of the credits granted on a `credits`
        feature; the same threshold again is the one stored."""
        body = compact(customer=customer, feature=feature, percent=percent, quantity=quantity)
        return self._post(UsageThreshold, "/entitlements/thresholds", body, idempotency_key=idempotency_key)

    def list(self, *, customer: str) -> Page[UsageThreshold]:
        """The customer's thresholds, oldest first, on one page (at most 20 per feature)."""
        return self._list(UsageThreshold, "/entitlements/thresholds", {"customer": customer})

    def delete(self, threshold_id: str, *, idempotency_key: str | None = None) -> UsageThreshold:
        """Deletes the threshold; what it announced stays announced. The threshold, `deleted` True."""
        url = path("/entitlements/thresholds/{}", threshold_id)
        return self._delete_returning(UsageThreshold, url, {}, idempotency_key=idempotency_key)


class SpendCaps(Resource):
    """A customer's own spend cap on a metered feature's overage, in place of their plan's, and their account cap
    across their metered features (audited)."""

    def set(
        self,
        *,
        customer: str,
        cap: dict[str, Any],
        feature: str | None = None,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> SpendCap:
        """Sets (creates or replaces) the cap: on `feature`, `{"units": n}` past the limit or `{"amount": m}` the
        metered price bills for the period; without a feature, the account cap `{"amount": m, "currency": "usd"}`,
        the most the customer's metered prices in that currency bill together. Either with `"at_cap": "block"`
        (the default) or `"alert"`. A cap below what the customer used this period raises (`cap_below_usage`)."""
        body = compact(customer=customer, feature=feature, cap=cap, reason=reason)
        return self._post(SpendCap, "/entitlements/spend_caps", body, idempotency_key=idempotency_key)

    def list(self, *, customer: str) -> Page[SpendCap]:
        """The customer's own caps, oldest first, on one page (one per feature, and the account cap)."""
        return self._list(SpendCap, "/entitlements/spend_caps", {"customer": customer})

    def delete(self, cap_id: str, *, idempotency_key: str | None = None) -> SpendCap:
        """Removes the cap (their plan's applies again). The cap, `deleted` True."""
        url = path("/entitlements/spend_caps/{}", cap_id)
        return self._delete_returning(SpendCap, url, {}, idempotency_key=idempotency_key)


class Entities(Resource):
    """A customer's entities — their seats, workspaces, projects, by your own ids — each counted by an allocation
    feature; a metered feature whose plan gives each entity its own limit a period (`per_entity`) takes `entity`
    in `check` and `consume`. Every change is audited."""

    def add(
        self,
        *,
        customer: str,
        feature: str,
        entity: str,
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> Entity:
        """Adds the customer's entity `entity` (your id for it), taking one unit of the allocation `feature` that
        counts it. The same id again, of the same feature, answers the entity as it is (nothing taken twice).
        Every unit the plan gives in use → `ConflictError` `allocation_exhausted`; `InvalidRequestError`
        `feature_not_allocation`, or `entity_exists` (the id names an entity of another feature). Nothing changes
        on an error."""
        body = compact(customer=customer, feature=feature, entity=entity, name=name)
        return self._post(Entity, "/entitlements/entities", body, idempotency_key=idempotency_key)

    def list(self, *, customer: str) -> Page[Entity]:
        """The customer's live entities, oldest first, on one page."""
        return self._list(Entity, "/entitlements/entities", {"customer": customer})

    def rename(self, entity_id: str, *, name: str, idempotency_key: str | None = None) -> Entity:
        """Renames the entity (`entity_id`: Tollgate's id, `ent_…`); its id, its use and its unit stay. A removed
        one → `InvalidRequestError` `entity_removed`."""
        url = path("/entitlements/entities/{}", entity_id)
        return self._patch(Entity, url, {"name": name}, idempotency_key=idempotency_key)

    def remove(
        self, entity_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> Entity:
        """Removes the entity (`entity_id`: Tollgate's id, `ent_…`) and gives its unit back; uses naming it are
        refused from now on (`unknown_entity`). Its use this period stays counted: the same id added again within
        the period finds it. Removing it again changes nothing. `reason` goes to the audit log. The entity, with
        `removed_at` set."""
        url = path("/entitlements/entities/{}", entity_id)
        return self._delete_returning(Entity, url, compact(reason=reason), idempotency_key=idempotency_key)


class AutoRecharges(Resource):
    """A customer's auto-recharges of a credits balance: when a consume or hold leaves the balance at or below
    `below`, `quantity` of a one-time `price` is charged to their saved card; its credits are granted once the
    payment succeeded (`credits.recharged`), never twice."""

    def create(
        self,
        *,
        customer: str,
        feature: str,
        below: int,
        price: str,
        quantity: int = 1,
        payment_method: str | None = None,
        idempotency_key: str | None = None,
    ) -> AutoRecharge:
        """Creates or replaces the customer's auto-recharge of `feature` (one per customer and feature); a
        `failed` one is armed again. When the balance already is at or below `below`, a charge starts now."""
        body = compact(
            customer=customer,
            feature=feature,
            below=below,
            price=price,
            quantity=quantity,
            payment_method=payment_method,
        )
        return self._post(AutoRecharge, "/entitlements/auto_recharges", body, idempotency_key=idempotency_key)

    def retrieve(self, recharge_id: str) -> AutoRecharge:
        """Its status (`armed`, `charging`, `failed`), its latest payment and why it failed, if it did."""
        return self._get(AutoRecharge, path("/entitlements/auto_recharges/{}", recharge_id), {})

    def list(self, *, customer: str) -> Page[AutoRecharge]:
        """The customer's auto-recharges, oldest first, on one page (one per feature)."""
        return self._list(AutoRecharge, "/entitlements/auto_recharges", {"customer": customer})

    def delete(self, recharge_id: str, *, idempotency_key: str | None = None) -> AutoRecharge:
        """No charge starts after it (one under way still settles). The recharge, `deleted` True."""
        url = path("/entitlements/auto_recharges/{}", recharge_id)
        return self._delete_returning(AutoRecharge, url, {}, idempotency_key=idempotency_key)


class Entitlements(Resource):
    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        self.grants = Grants(transport)
        self.revocations = Revocations(transport)
        self.holds = Holds(transport)
        self.thresholds = Thresholds(transport)
        self.auto_recharges = AutoRecharges(transport)
        self.spend_caps = SpendCaps(transport)
        self.entities = Entities(transport)

    def check(
        self,
        *,
        customer: str,
        feature: str,
        quantity: int | None = None,
        as_of: str | datetime | None = None,
        entity: str | None = None,
        model: str | None = None,
        dimensions: Mapping[str, int] | None = None,
    ) -> EntitlementCheck:
        """May the customer use `quantity` (default 1) of the feature now? Records nothing.

        A customer Tollgate has never seen gets the project's default product's answer. `as_of` (a past instant):
        could they then — recomputed from what Tollgate had recorded by then (the catalog is today's). `entity`
        (one of the customer's `entities`, your id for it) on a metered feature whose plan gives each entity its
        own limit: the use must fit that limit too; the answer carries the entity's use (`entity`) and, refused by
        it, `binding` "entity". `InvalidRequestError` `unknown_entity` or `entity_not_counted`.

        A model call (a feature with a usage formula) gives its `model` and `dimensions` instead of `quantity`: the
        check is for the units the formula makes of them now, answered in `quantity`.
        """
        params = compact(
            customer=customer, feature=feature, quantity=quantity, as_of=as_of, entity=entity, model=model
        )
        for name, value in (dimensions or {}).items():
            params[f"dimensions[{name}]"] = value
        return self._get(EntitlementCheck, "/entitlements/check", params)

    def list(self, *, customer: str, as_of: str | datetime | None = None) -> CustomerEntitlements:
        """Everything the customer is entitled to, with usage, limits and balances (`as_of`: as it was then)."""
        return self._get(CustomerEntitlements, "/entitlements", compact(customer=customer, as_of=as_of))

    def consume(
        self,
        *,
        id: str,
        customer: str,
        feature: str,
        quantity: int = 1,
        entity: str | None = None,
        idempotency_key: str | None = None,
    ) -> EntitlementCheck:
        """Checks and records the usage atomically (`metered`, `allocation` or `credits` features). Not
        allowed → `allowed` is False and nothing is recorded (not an exception: being at the limit is an
        answer). `id` is your idempotency id for the usage: the same id again records nothing and answers the
        current state with `duplicate` True (`ConflictError` `idempotency_id_reused` if it named another
        customer, feature or quantity). `entity`: as in `check` — the use must fit the entity's own limit as
        well as the account's, and counts for both."""
        body: dict[str, Any] = {"id": id, "customer": customer, "feature": feature, "quantity": quantity}
        if entity is not None:
            body["entity"] = entity
        return self._post(EntitlementCheck, "/entitlements/consume", body, idempotency_key=idempotency_key)

    def release(
        self,
        *,
        id: str,
        customer: str,
        feature: str,
        quantity: int = 1,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> EntitlementCheck:
        """Gives back units of an `allocation` feature (a seat freed); `reason` goes to the audit log. `id` is
        your idempotency id for the release. Releasing more than is held → `InvalidRequestError`
        `release_exceeds_allocation`."""
        body = compact(id=id, customer=customer, feature=feature, quantity=quantity, reason=reason)
        return self._post(EntitlementCheck, "/entitlements/release", body, idempotency_key=idempotency_key)


class Credits(Resource):
    def retrieve(self, *, customer: str, feature: str, entity: str | None = None) -> CreditBalance:
        """The customer's balance of a `credits` feature, with its lots and ledger (newest first): the
        account's, or (`entity`) that entity's own. A customer Tollgate has never seen has a balance of 0."""
        return self._get(
            CreditBalance, "/credits", compact(customer=customer, feature=feature, entity=entity)
        )
