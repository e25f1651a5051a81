"""Subscriptions (Stripe's, mirrored) and their invoices."""

from __future__ import annotations

from collections.abc import Sequence

from tollgate_client.pagination import Page
from tollgate_client.params import LineItem
from tollgate_client.resources._base import Resource, compact, path
from tollgate_client.types import Invoice, Subscription, SubscriptionPreview, VersionMoves


class Subscriptions(Resource):
    def retrieve(self, subscription_id: str) -> Subscription:
        return self._get(Subscription, path("/subscriptions/{}", subscription_id))

    def list(
        self,
        *,
        customer: str | None = None,
        status: str | None = None,
        product: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> Page[Subscription]:
        params = {
            "customer": customer,
            "status": status,
            "product": product,
            "limit": limit,
            "starting_after": starting_after,
        }
        return self._list(Subscription, "/subscriptions", params)

    def create(
        self,
        *,
        customer: str,
        price: str | None = None,
        items: Sequence[LineItem] | None = None,
        quantity: int | None = None,
        trial_days: int | None = None,
        proration_behavior: str | None = None,
        promotion_code: str | None = None,
        automatic_tax: bool | None = None,
        idempotency_key: str | None = None,
    ) -> Subscription:
        """Subscribe server-side on the customer's saved default card (no Checkout): one `price`, or several
        `items`, optionally with a `promotion_code`, and Stripe Tax with `automatic_tax=True` (every price needs
        a `tax_behavior`, Stripe the customer's address). A declined card raises `CardError` and nothing is
        created; no saved card is `no_payment_method`; a product the customer already subscribes to is a
        `ConflictError` (`already_subscribed`)."""
        body = compact(
            customer=customer,
            price=price,
            items=list(items) if items is not None else None,
            quantity=quantity,
            trial_days=trial_days,
            proration_behavior=proration_behavior,
            promotion_code=promotion_code,
            automatic_tax=automatic_tax,
        )
        return self._post(Subscription, "/subscriptions", body, idempotency_key=idempotency_key)

    def update(
        self,
        subscription_id: str,
        *,
        price: str | None = None,
        items: Sequence[LineItem] | None = None,
        quantity: int | None = None,
        proration_behavior: str | None = None,
        payment_behavior: str | None = None,
        automatic_tax: bool | None = None,
        promotion_code: str | None = None,
        idempotency_key: str | None = None,
    ) -> Subscription:
        """Change plan or quantity, or give the full list of `items` wanted (kept, replaced, added, removed),
        apply a `promotion_code`, or turn Stripe Tax on or off (`automatic_tax`). `proration_behavior`: `create_prorations` | `none` |
        `always_invoice`; given, the change applies now with it, else the project's proration rule for its
        direction decides (`period_end`: the answer's `pending_change` holds it until the period ends).

        A price of another interval (monthly ↔ yearly) restarts the period and is invoiced at once; with a
        metered item (or any other item) on the subscription, switch every item with `items` (a `price` alone
        is `interval_mismatch`).
        Upgrades and interval changes default to `payment_behavior="pending_if_incomplete"` (a failed
        payment changes nothing);
        with `error_if_incomplete` a declined card raises `CardError`.
        """
        body = compact(
            price=price,
            items=list(items) if items is not None else None,
            quantity=quantity,
            proration_behavior=proration_behavior,
            payment_behavior=payment_behavior,
            automatic_tax=automatic_tax,
            promotion_code=promotion_code,
        )
        url = path("/subscriptions/{}", subscription_id)
        return self._patch(Subscription, url, body, idempotency_key=idempotency_key)

    def preview(
        self,
        subscription_id: str,
        *,
        price: str | None = None,
        items: Sequence[LineItem] | None = None,
        quantity: int | None = None,
        proration_behavior: str | None = None,
        payment_behavior: str | None = None,
        automatic_tax: bool | None = None,
        promotion_code: str | None = None,
        idempotency_key: str | None = None,
    ) -> SubscriptionPreview:
        """What `update` with the same arguments would invoice (`amount_due`, `subtotal`, `discount`, `tax`,
        `total` and the `lines`), from Stripe's invoice preview: nothing is changed, redeemed or charged."""
        body = compact(
            price=price,
            items=list(items) if items is not None else None,
            quantity=quantity,
            proration_behavior=proration_behavior,
            payment_behavior=payment_behavior,
            automatic_tax=automatic_tax,
            promotion_code=promotion_code,
        )
        url = path("/subscriptions/{}/preview", subscription_id)
        return self._post(SubscriptionPreview, url, body, idempotency_key=idempotency_key)

    def cancel(
        self, subscription_id: str, *, at_period_end: bool | None = None, idempotency_key: str | None = None
    ) -> Subscription:
        url = path("/subscriptions/{}/cancel", subscription_id)
        return self._post(
            Subscription, url, compact(at_period_end=at_period_end), idempotency_key=idempotency_key
        )

    def resume(self, subscription_id: str, *, idempotency_key: str | None = None) -> Subscription:
        """Undoes a scheduled cancellation, or resumes a paused subscription."""
        url = path("/subscriptions/{}/resume", subscription_id)
        return self._post(Subscription, url, idempotency_key=idempotency_key)

    def version_moves(
        self,
        *,
        product: str,
        to_version: int,
        when: str | None = None,
        from_versions: Sequence[int] | None = None,
        subscriptions: Sequence[str] | None = None,
        prices: Sequence[str] | None = None,
        preview: bool = False,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> VersionMoves:
        """Moves the live subscriptions of `product` (those on `from_versions`, holding one of `prices` — price
        keys of the product: a plan —, or the `subscriptions` named; by default every one not on it) to its published version `to_version`, `when` "now" (the default) or at
        each one's "period_end" (`moves[].effective_at`): their entitlements are the version's from then on,
        their plan credits from their next paid period. A version that froze other Stripe prices (a draft that
        repriced) moves the items to them at Stripe first, now or at the period's end by the project's proration
        rule (`moves[].prices`, `.proration`; a preview's `.invoice`). One already on `to_version`
        is not moved again, so a retry moves only what is left (`moved` counts this request's); moving one with
        a move scheduled to the version it is on cancels the move. `preview=True` answers what each move would change (`moves[].changes`) and moves nothing.
        A version never published is an `InvalidRequestError` (`unknown_version`), a price not of the product
        too (`unknown_price`); `reason` is audited."""
        body = compact(
            product=product,
            to_version=to_version,
            when=when,
            from_versions=list(from_versions) if from_versions is not None else None,
            subscriptions=list(subscriptions) if subscriptions is not None else None,
            prices=list(prices) if prices is not None else None,
            preview=preview,
            reason=reason,
        )
        return self._post(VersionMoves, "/subscriptions/version_moves", body, idempotency_key=idempotency_key)


class Invoices(Resource):
    def retrieve(self, invoice_id: str) -> Invoice:
        return self._get(Invoice, path("/invoices/{}", invoice_id))

    def list(
        self,
        *,
        customer: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> Page[Invoice]:
        params = {"customer": customer, "status": status, "limit": limit, "starting_after": starting_after}
        return self._list(Invoice, "/invoices", params)

    def void(
        self, invoice_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> Invoice:
        """Voids an open or uncollectible invoice at Stripe: it is no longer owed (final). Any other status is a
        `ConflictError` (`invoice_not_voidable`: a paid invoice is refunded instead). `reason` is audited."""
        url = path("/invoices/{}/void", invoice_id)
        return self._post(Invoice, url, compact(reason=reason), idempotency_key=idempotency_key)

    def mark_uncollectible(
        self, invoice_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> Invoice:
        """Marks an open invoice uncollectible at Stripe (a bad debt: Stripe stops collecting it; it can still be
        paid or voided). Any other status is a `ConflictError` (`invoice_not_open`). `reason` is audited."""
        url = path("/invoices/{}/mark_uncollectible", invoice_id)
        return self._post(Invoice, url, compact(reason=reason), idempotency_key=idempotency_key)

    def add_line(
        self,
        invoice_id: str,
        *,
        amount: int,
        description: str,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> Invoice:
        """Adds a line (a Stripe invoice item) of `amount` (minor units, non-zero; negative is a credit line) to a
        draft invoice at Stripe. Any other status is a `ConflictError` (`invoice_not_draft`). `reason` is
        audited."""
        url = path("/invoices/{}/lines", invoice_id)
        body = compact(amount=amount, description=description, reason=reason)
        return self._post(Invoice, url, body, idempotency_key=idempotency_key)

    def update_line(
        self,
        invoice_id: str,
        line_id: str,
        *,
        amount: int | None = None,
        description: str | None = None,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> Invoice:
        """Changes the `amount` or `description` (at least one) of a draft invoice's line that came from an
        invoice item, at Stripe. A subscription's line follows its subscription: a `ConflictError`
        (`invoice_line_not_editable`); an unknown line is a `NotFoundError` (`invoice_line_not_found`), an
        invoice that is not a draft a `ConflictError` (`invoice_not_draft`). `reason` is audited."""
        url = path("/invoices/{}/lines/{}", invoice_id, line_id)
        body = compact(amount=amount, description=description, reason=reason)
        return self._post(Invoice, url, body, idempotency_key=idempotency_key)

    def remove_line(
        self, invoice_id: str, line_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> Invoice:
        """Removes a draft invoice's line that came from an invoice item, at Stripe; answers the invoice without
        it. The same conflicts as `update_line`. `reason` is audited."""
        url = path("/invoices/{}/lines/{}", invoice_id, line_id)
        return self._delete_returning(Invoice, url, compact(reason=reason), idempotency_key=idempotency_key)
