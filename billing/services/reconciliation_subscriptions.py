"""Reconciliation of subscriptions: every Stripe subscription of the account compared with its local mirror
(status, price, quantity, cancellation, period, and every item's price and quantity), repaired through `subscription_apply`, and local subscriptions
Stripe no longer has recorded as missing in Stripe.
"""

from functools import partial
from typing import Any

from billing.models import Drift, Subscription
from billing.services.reconciliation_reader import _Reader
from billing.services.reconciliation_recording import Expected, _Recording
from billing.services.subscription_mirror import primary_item, subscription_apply, subscription_items_resolve
from customers.models import Customer
from customers.services.customers import customer_for_stripe
from projects.models import Project
from stripe_gateway.gateway import from_timestamp, stripe_account_of, stripe_id


class _SubscriptionChecks(_Recording):
    """Subscriptions (see the module docstring)."""

    def subscriptions(self, reader: _Reader, projects: list[Project]) -> None:
        seen: set[str] = set()
        for stripe_subscription in reader.each("subscriptions", {"status": "all", **self._created()}):
            self.run.checked += 1
            seen.add(stripe_subscription["id"])
            customer = customer_for_stripe(
                account=reader.account,
                stripe_customer_id=stripe_id(stripe_subscription.get("customer")),
                metadata=stripe_subscription.get("metadata"),
            )
            if customer is None or customer.project not in projects:
                continue  # not ours, or another project than the one asked for
            self.check(
                customer.project,
                "subscription",
                stripe_subscription["id"],
                local_id=self._local_subscription_id(customer, stripe_subscription["id"]),
                compare=partial(self._subscription_pairs, customer, stripe_subscription),
                repair=partial(self._subscription_repair, reader, stripe_subscription),
            )
        if self.since is not None:
            return
        for local in Subscription.objects.filter(project__in=projects).exclude(
            stripe_subscription_id__in=seen
        ):
            if stripe_account_of(local.project) == reader.account:
                self.drift(
                    local.project,
                    Drift.Kind.MISSING_IN_STRIPE,
                    "subscription",
                    local.stripe_subscription_id,
                    local_id=local.pk,
                )

    @staticmethod
    def _local_subscription_id(customer: Customer, stripe_id: str) -> str:
        return (
            Subscription.objects.filter(project=customer.project, stripe_subscription_id=stripe_id)
            .values_list("pk", flat=True)
            .first()
            or ""
        )

    @staticmethod
    def _subscription_pairs(customer: Customer, stripe_subscription: dict[str, Any]) -> Expected | None:
        local = Subscription.objects.filter(
            project=customer.project, stripe_subscription_id=stripe_subscription["id"]
        ).first()
        if local is None:
            return None
        resolved = subscription_items_resolve(
            project=customer.project, stripe_subscription=stripe_subscription
        )
        # The primary item, as the mirror picks it; Stripe's first when none of the prices is in the catalog.
        item = (
            primary_item(resolved)[0]
            if resolved
            else ((stripe_subscription.get("items") or {}).get("data") or [{}])[0]
        )
        pairs: Expected = {
            "status": (local.status, stripe_subscription.get("status")),
            "cancel_at_period_end": (
                local.cancel_at_period_end,
                bool(stripe_subscription.get("cancel_at_period_end")),
            ),
            "quantity": (local.quantity, int(item.get("quantity") or 1)),
            "stripe_price_id": (local.stripe_price_id, stripe_id(item.get("price"))),
            "current_period_start": (
                local.current_period_start,
                from_timestamp(item.get("current_period_start")),
            ),
            "current_period_end": (local.current_period_end, from_timestamp(item.get("current_period_end"))),
            "trial_end": (local.trial_end, from_timestamp(stripe_subscription.get("trial_end"))),
            "canceled_at": (local.canceled_at, from_timestamp(stripe_subscription.get("canceled_at"))),
        }
        # Items field by field, keyed by Stripe's item id (those of prices outside the catalog are not mirrored).
        stored = {row.stripe_item_id: row for row in local.items.all()}
        for stripe_item, price in resolved:
            row = stored.pop(stripe_item["id"], None)
            metered = price.usage_type == price.UsageType.METERED
            pairs[f"item {stripe_item['id']} stripe_price_id"] = (
                row.stripe_price_id if row else None,
                stripe_id(stripe_item.get("price")),
            )
            pairs[f"item {stripe_item['id']} quantity"] = (
                row.quantity if row else None,
                None if metered else int(stripe_item.get("quantity") or 1),
            )
        for stripe_item_id, row in stored.items():  # an item Stripe no longer has
            pairs[f"item {stripe_item_id} stripe_price_id"] = (row.stripe_price_id, None)
        return pairs

    def _subscription_repair(self, reader: _Reader, stripe_subscription: dict[str, Any]) -> None:
        subscription_apply(
            account=reader.account,
            stripe_subscription=stripe_subscription,
            event_created=self.as_of(stripe_subscription),
            force=True,
        )
