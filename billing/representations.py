"""The API representation of billing objects: one output serializer per object renders the REST API answers,
the OpenAPI schema and the `data.object` of tenant events alike, so the three cannot drift."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.models import Cart, CheckoutSession, Invoice, Payment, Subscription
from catalog.models import Price
from catalog.pricing import price_amount
from core.serializers import UnixTimeField, api_time
from core.statements import prefetched
from stripe_gateway.gateway import from_timestamp


class PaymentItemOutput(serializers.Serializer[Any]):
    price = serializers.CharField(allow_null=True)
    price_key = serializers.CharField(allow_null=True)
    product = serializers.CharField(allow_null=True)
    quantity = serializers.IntegerField(allow_null=True, help_text="Null for a metered price.")
    unit_amount = serializers.IntegerField(allow_null=True, help_text="Null for a tiered price.")
    currency = serializers.CharField()
    description = serializers.CharField()


class PaymentOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    customer = serializers.CharField(source="customer.external_id")
    type = serializers.CharField()
    flow = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.source
    status = serializers.CharField()
    amount = serializers.IntegerField()
    amount_refunded = serializers.IntegerField()
    amount_tax = serializers.IntegerField(
        help_text="The tax included in `amount` (automatic tax; 0 without it), in minor units."
    )
    amount_discount = serializers.IntegerField(
        help_text="What a promotion code's discount took off before `amount` (0 without one), in minor units."
    )
    promotion_code = serializers.CharField(
        source="promotion_code.code", allow_null=True, default=None, help_text="The code redeemed, if any."
    )
    currency = serializers.CharField()
    description = serializers.CharField()
    reference = serializers.CharField(allow_null=True)
    metadata = serializers.DictField()
    items = PaymentItemOutput(many=True)
    checkout_session = serializers.SerializerMethodField()
    checkout_url = serializers.CharField(allow_null=True)
    client_secret = serializers.CharField(
        allow_null=True, help_text="Intent flow: confirm it with Stripe.js."
    )
    publishable_key = serializers.SerializerMethodField()
    last_error_code = serializers.CharField(allow_null=True)
    decline_code = serializers.CharField(allow_null=True)
    dispute_status = serializers.CharField(
        allow_null=True, help_text="Stripe's dispute status, when disputed."
    )
    stripe_checkout_session_id = serializers.CharField(allow_null=True)
    stripe_payment_intent_id = serializers.CharField(allow_null=True)
    stripe_subscription_id = serializers.CharField(allow_null=True)
    stripe_invoice_id = serializers.CharField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    succeeded_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_object(self, obj: Payment) -> str:
        return "payment"

    def get_checkout_session(self, obj: Payment) -> str | None:
        session = getattr(obj, "checkout_session", None) if obj.flow == Payment.Flow.CHECKOUT else None
        return session.pk if session is not None else None

    def get_publishable_key(self, obj: Payment) -> str | None:
        if obj.flow != Payment.Flow.INTENT:
            return None
        from django.conf import settings

        return obj.project.stripe_publishable_key or settings.STRIPE_PUBLISHABLE_KEY or None

    def to_representation(self, instance: Payment) -> dict[str, Any]:
        data = super().to_representation(instance)
        for field in (
            "checkout_url",
            "client_secret",
            "last_error_code",
            "decline_code",
            "dispute_status",
            "stripe_checkout_session_id",
            "stripe_payment_intent_id",
            "stripe_subscription_id",
            "stripe_invoice_id",
        ):
            data[field] = data[field] or None
        if instance.flow != Payment.Flow.INTENT:  # Checkout's page, or no one's (off session)
            data.pop("client_secret")
            data.pop("publishable_key")
        if instance.flow != Payment.Flow.CHECKOUT:
            data.pop("checkout_url")
            data.pop("checkout_session")
        return data


class PaymentStatusOutput(serializers.Serializer[Any]):
    """The light read for pollers: no Stripe call, no relations."""

    id = serializers.CharField()
    status = serializers.CharField()
    amount_refunded = serializers.IntegerField()


class CheckoutSessionOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    mode = serializers.CharField()
    status = serializers.CharField()
    url = serializers.CharField(allow_null=True)
    expires_at = serializers.DateTimeField()
    payment = serializers.CharField(source="payment_id")
    customer = serializers.CharField(source="customer.external_id")
    amount_total = serializers.IntegerField(source="payment.amount")
    currency = serializers.CharField(source="payment.currency")
    success_url = serializers.CharField()
    cancel_url = serializers.CharField()
    stripe_session_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_object(self, obj: CheckoutSession) -> str:
        return "checkout_session"

    def to_representation(self, instance: CheckoutSession) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["url"] = data["url"] or None
        data["stripe_session_id"] = data["stripe_session_id"] or None
        return data


class CartItemOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    price = serializers.CharField(source="price.key")
    product = serializers.CharField(source="price.product.key")
    quantity = serializers.IntegerField()
    unit_amount = serializers.IntegerField(
        source="price.unit_amount", allow_null=True, help_text="Null for a tiered price."
    )
    amount = serializers.SerializerMethodField()
    currency = serializers.CharField(source="price.currency")

    def get_object(self, obj: Any) -> str:
        return "cart_item"

    def get_amount(self, obj: Any) -> int:
        return price_amount(obj.price, obj.quantity)


class CartOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    customer = serializers.CharField(source="customer.external_id")
    status = serializers.CharField()
    currency = serializers.CharField(allow_null=True)
    items = serializers.SerializerMethodField()
    amount_total = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_object(self, obj: Cart) -> str:
        return "cart"

    def _items(self, obj: Cart) -> list[Any]:
        return list(obj.items.select_related("price__product").order_by("created_at", "id"))

    def get_items(self, obj: Cart) -> list[dict[str, Any]]:
        return [dict(item) for item in CartItemOutput(self._items(obj), many=True).data]

    def get_amount_total(self, obj: Cart) -> int:
        return sum(price_amount(item.price, item.quantity) for item in self._items(obj))

    def to_representation(self, instance: Cart) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["currency"] = data["currency"] or None
        return data


class SubscriptionDiscountOutput(serializers.Serializer[Any]):
    """The discount a subscription carries (billing.services.discount_mirror)."""

    coupon = serializers.CharField(allow_null=True, help_text="The coupon's key.")
    promotion_code = serializers.CharField(allow_null=True, help_text="The code redeemed, if any.")
    percent_off = serializers.FloatField(allow_null=True)
    amount_off = serializers.IntegerField(allow_null=True)
    currency = serializers.CharField(allow_null=True)
    duration = serializers.CharField(allow_null=True, help_text="once | repeating | forever")
    end = serializers.DateTimeField(allow_null=True, help_text="When a repeating discount ends.")


DISCOUNT_FIELDS = ("coupon", "promotion_code", "percent_off", "amount_off", "currency", "duration")


class SubscriptionItemOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    price = serializers.CharField(source="price.key")
    product = serializers.CharField(source="product.key")
    quantity = serializers.IntegerField(allow_null=True, help_text="Null for a metered price.")
    usage_type = serializers.ChoiceField(choices=Price.UsageType.choices)
    version = serializers.IntegerField(
        source="product_version",
        help_text="The product's version the item is on (`/products/{product}/versions`): the one in force when "
        "Stripe created it, until moved (`POST /subscriptions/version_moves`).",
    )


class PendingChangeItemOutput(serializers.Serializer[Any]):
    price = serializers.CharField(help_text="The price's key (Stripe's id for a price not in the catalog).")
    quantity = serializers.IntegerField(allow_null=True, help_text="Null for a metered price.")


class PendingChangeOutput(serializers.Serializer[Any]):
    """A change scheduled for the end of the current period (a proration rule `period_end`)."""

    price = serializers.CharField(allow_null=True, help_text="The primary item's price after the change.")
    quantity = serializers.IntegerField(allow_null=True, help_text="The primary item's quantity after it.")
    items = PendingChangeItemOutput(many=True, help_text="Every item after the change.")
    effective_at = serializers.DateTimeField(help_text="When it takes effect: the current period's end.")


class SubscriptionOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField(default="subscription")
    customer = serializers.CharField(source="customer.external_id")
    status = serializers.ChoiceField(choices=Subscription.Status.choices)
    price = serializers.CharField(source="price.key")
    product = serializers.CharField(source="product.key")
    quantity = serializers.IntegerField()
    items = serializers.SerializerMethodField(
        help_text=(
            "Every price of the subscription. `price`, `product` and `quantity` above repeat its primary "
            "item (the first licensed one)."
        )
    )
    current_period_start = serializers.DateTimeField(allow_null=True)
    current_period_end = serializers.DateTimeField(allow_null=True)
    cancel_at_period_end = serializers.BooleanField()
    trial_end = serializers.DateTimeField(allow_null=True)
    canceled_at = serializers.DateTimeField(allow_null=True)
    stripe_subscription_id = serializers.CharField()
    created_at = serializers.DateTimeField()

    discount = serializers.SerializerMethodField(
        help_text="The discount in force: {coupon, promotion_code, percent_off, amount_off, currency, duration, end}, or null."
    )

    pending_change = serializers.SerializerMethodField(
        help_text="A change scheduled for the end of the current period (the project's proration rule "
        "`period_end`, or a change that takes a metered price off: Stripe would bill the period's usage so far "
        "under it to nobody), or null. It takes effect when the period ends; a later change replaces it, a "
        "cancellation drops it."
    )

    @extend_schema_field(PendingChangeOutput(allow_null=True))
    def get_pending_change(self, obj: Subscription) -> dict[str, Any] | None:
        pending = obj.pending_change
        if not pending:
            return None
        return {
            "price": pending.get("price"),
            "quantity": pending.get("quantity"),
            "items": [
                {"price": price, "quantity": quantity} for price, quantity in pending.get("items") or []
            ],
            "effective_at": api_time(from_timestamp(pending.get("effective_at"))),
        }

    @extend_schema_field(SubscriptionDiscountOutput(allow_null=True))
    def get_discount(self, obj: Subscription) -> dict[str, Any] | None:
        if not obj.discount:
            return None
        end = from_timestamp(obj.discount.get("end"))
        return {
            **{name: obj.discount.get(name) for name in DISCOUNT_FIELDS},
            "end": api_time(end),
        }

    @staticmethod
    def items_of(subscription: Subscription) -> list[dict[str, Any]]:
        """The items as rendered: those of Stripe's answer when the subscription carries one
        (`items_answer`, not saved), else the mirrored rows."""
        rows = getattr(subscription, "items_answer", None)
        if rows is None:
            items = subscription.items.all()
            rows = list(
                items if prefetched(subscription, "items") else items.select_related("price", "product")
            )
        return [dict(row) for row in SubscriptionItemOutput(rows, many=True).data]

    @extend_schema_field(SubscriptionItemOutput(many=True))
    def get_items(self, obj: Subscription) -> list[dict[str, Any]]:
        return self.items_of(obj)

    def to_representation(self, instance: Subscription) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["object"] = "subscription"
        return data


# One of `Invoice.lines`, as the invoice mirror stores it (billing.services.invoices.invoice_lines).
class InvoiceLineOutput(serializers.Serializer[Any]):
    id = serializers.CharField(
        source="stripe_line_id",
        allow_null=True,
        default=None,
        help_text="Stripe's id of the line (`il_…`): a draft's line is edited by it. Null on invoices mirrored "
        "before lines had one.",
    )
    type = serializers.ChoiceField(
        choices=["invoice_item", "subscription_item"],
        allow_null=True,
        default=None,
        help_text="`invoice_item`: a line of an invoice item (added to the invoice, a proration), which a draft "
        "may change or remove; `subscription_item`: a subscription's own line, which follows the subscription. "
        "Null on invoices mirrored before lines had one.",
    )
    description = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    quantity = serializers.IntegerField(allow_null=True)
    proration = serializers.BooleanField()
    stripe_price_id = serializers.CharField(allow_null=True)
    # Stored as Stripe gave them (Unix seconds), answered as ISO 8601 like every time of the API.
    period_start = UnixTimeField(allow_null=True)
    period_end = UnixTimeField(allow_null=True)


class InvoiceOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField(default="invoice")
    customer = serializers.CharField(source="customer.external_id")
    subscription = serializers.CharField(source="subscription_id", allow_null=True)
    number = serializers.CharField(allow_null=True)
    status = serializers.CharField()
    billing_reason = serializers.CharField(allow_null=True)
    subtotal = serializers.IntegerField()
    discount = serializers.IntegerField(help_text="What discounts took off the subtotal (before tax).")
    tax = serializers.IntegerField()
    total = serializers.IntegerField()
    amount_due = serializers.IntegerField()
    amount_paid = serializers.IntegerField()
    amount_remaining = serializers.IntegerField()
    currency = serializers.CharField()
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    hosted_invoice_url = serializers.URLField(allow_null=True)
    invoice_pdf = serializers.URLField(allow_null=True)
    lines = InvoiceLineOutput(many=True)
    stripe_invoice_id = serializers.CharField()
    created_at = serializers.DateTimeField()

    def to_representation(self, instance: Invoice) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["object"] = "invoice"
        for field in ("number", "billing_reason", "hosted_invoice_url", "invoice_pdf"):
            data[field] = data[field] or None
        return data


# One of `CreditNote.lines`, as the credit note mirror stores it (billing.services.credit_notes).
class CreditNoteLineOutput(serializers.Serializer[Any]):
    type = serializers.CharField(
        help_text="`invoice_line_item` (a line of the invoice) or `custom_line_item`."
    )
    description = serializers.CharField(allow_null=True)
    amount = serializers.IntegerField()
    quantity = serializers.IntegerField(allow_null=True)
    invoice_line = serializers.IntegerField(
        allow_null=True, help_text="The index in the invoice's `lines` of the line credited."
    )


class CreditNoteOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField(default="credit_note")
    invoice = serializers.CharField(source="invoice_id")
    customer = serializers.CharField(source="customer.external_id")
    number = serializers.CharField(allow_null=True)
    status = serializers.CharField(help_text="`issued` or `void`.")
    type = serializers.CharField(
        help_text="`pre_payment` (it lowered the amount due), `post_payment` (given back after payment) or `mixed`."
    )
    currency = serializers.CharField()
    amount = serializers.IntegerField()
    subtotal = serializers.IntegerField()
    total = serializers.IntegerField()
    pre_payment_amount = serializers.IntegerField(help_text="What it took off the amount still due.")
    post_payment_amount = serializers.IntegerField(
        help_text="What it gave back of what was paid: refund_amount + credit_amount + out_of_band_amount."
    )
    refund_amount = serializers.IntegerField(help_text="Refunded to the payment method.")
    credit_amount = serializers.IntegerField(help_text="Credited to the customer's Stripe balance.")
    out_of_band_amount = serializers.IntegerField(help_text="Settled outside Stripe.")
    reason = serializers.CharField(allow_null=True)
    memo = serializers.CharField(allow_null=True)
    lines = CreditNoteLineOutput(many=True)
    stripe_credit_note_id = serializers.CharField()
    created_at = serializers.DateTimeField()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["object"] = "credit_note"
        for field in ("number", "reason", "memo"):
            data[field] = data[field] or None
        return data
