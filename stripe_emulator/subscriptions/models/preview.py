"""``POST /v1/invoices/create_preview`` for an existing subscription: the invoice a change would create,
computed by the very code the change runs (plan, prorations, invoice drafting) on the account's state, which
is then put back as it was — nothing is created, no event is sent.

With ``proration_behavior=always_invoice``, and for a change of billing interval whatever the proration
behavior, the preview is the ``subscription_update`` invoice the change invoices at once; otherwise it is the
subscription's next renewal invoice (the next period in advance, plus pending invoice items, the change's
prorations among them), as Stripe previews it.

``discounts`` replace the discounts the preview inherits from the subscription (validated and redeemed as an
update's are, within the dry run; ``[]`` inherits none), and ``automatic_tax`` turns Stripe Tax on or off for
it (turning it on needs the customer's location and a tax behavior on every price, as an update does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stripe_emulator.core import ids
from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.render import render
from stripe_emulator.core.store import StripeObject
from stripe_emulator.subscriptions.models.base import ENDED_STATUSES
from stripe_emulator.subscriptions.models.proration import SubscriptionProrations
from stripe_emulator.subscriptions.periods import next_boundary
from stripe_emulator.tax import check_taxable, subscription_automatic_tax


class SubscriptionPreview(SubscriptionProrations):
    if TYPE_CHECKING:
        # From the sibling mixin `SubscriptionUpdates`, which `SubscriptionsBackend` composes with this one: the
        # preview replaces the subscription's discounts exactly as an update does (inside its dry run).
        def _discounts_check(
            self, sub: StripeObject, entries: list[dict[str, str | None]]
        ) -> Callable[[], list[str]]: ...

    def invoice_preview(
        self,
        *,
        subscription: str,
        customer: str | None = None,
        items: list[dict[str, Any]] | None = None,
        proration_behavior: str = "create_prorations",
        proration_date: int | None = None,
        discounts: list[dict[str, str | None]] | None = None,
        automatic_tax: bool | None = None,
    ) -> StripeObject:
        """The rendered preview invoice (an ``upcoming_in_…`` id, as Stripe's previews carry)."""
        sub = self.subscription_require(subscription, param="subscription")
        if customer is not None and customer != sub["customer"]:
            raise InvalidRequestError(
                f"The subscription {subscription} does not belong to the customer {customer}.",
                param="customer",
            )
        if sub["status"] in ENDED_STATUSES:
            raise InvalidRequestError(
                f"No upcoming invoices for a canceled subscription: {subscription}", param="subscription"
            )
        undo = self._undo_point()
        try:
            if automatic_tax:
                self._preview_taxable(sub, items or [])
            if automatic_tax is not None:
                sub["automatic_tax"] = subscription_automatic_tax(automatic_tax)
            if discounts is not None:
                sub["discounts"] = self._discounts_check(sub, discounts)()
            invoice = self._preview_draft(sub, items, proration_behavior, proration_date)
            preview = render(self.account, invoice)
        finally:
            undo()  # everything the dry run wrote (items, invoice items, the draft, events) is forgotten
        return _as_preview(preview)

    def _preview_taxable(self, sub: StripeObject, items: list[dict[str, Any]]) -> None:
        """Automatic tax asked for the preview: the customer's location and the tax behavior of every price the
        invoice would bill (the subscription's items and the change's)."""
        prices: list[tuple[StripeObject, str | None]] = [(item["price"], None) for item in self.items_of(sub)]
        for n, item in enumerate(items):
            if item.get("price"):
                param = f"subscription_details[items][{n}][price]"
                prices.append((self._price(item["price"], param), param))
        check_taxable(self.account, customer_id=sub["customer"], prices=prices)

    def _preview_draft(
        self,
        sub: StripeObject,
        items: list[dict[str, Any]] | None,
        proration_behavior: str,
        proration_date: int | None,
    ) -> StripeObject:
        now = self.now()
        param = "subscription_details[items]"
        if items:
            plan = self._plan_items(sub, items, param)
            if sub["status"] != "trialing" and self._changes_interval(sub, plan):
                return self._interval_invoice(
                    sub, plan, proration_behavior, proration_date, "allow_incomplete", now
                )
            specs = self._apply_plan(sub, plan, proration_behavior, proration_date, "allow_incomplete", now)
            if proration_behavior == "always_invoice":
                return self._proration_invoice(sub, specs, plan, now)
        period = self._period(sub)
        interval, count = self._interval(sub)
        new_end = next_boundary(sub["billing_cycle_anchor"], interval, count, period[1])
        lines = self._cycle_lines(sub, at=period[1], new_end=new_end)
        return self._cycle_invoice(sub, lines, period=period, created=period[1])


def _as_preview(invoice: StripeObject) -> StripeObject:
    """A draft renamed as Stripe names previews: ``upcoming_in_…``, lines pointing at it."""
    old = invoice["id"]
    new = ids.new_id("upcoming_in")
    invoice["id"] = new
    invoice["lines"]["url"] = f"/v1/invoices/{new}/lines"
    for line in invoice["lines"]["data"]:
        if line.get("invoice") == old:
            line["invoice"] = new
    return invoice
