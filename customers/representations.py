"""How a customer is written in API answers."""

from typing import Any

from rest_framework import serializers

from customers.models import Customer


class CustomerOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    external_id = serializers.CharField()
    email = serializers.CharField()
    name = serializers.CharField()
    metadata = serializers.DictField()
    currency = serializers.CharField(
        allow_null=True, help_text="Fixed by the first purchase; null before it."
    )
    stripe_customer_id = serializers.CharField(allow_null=True)
    test_clock = serializers.CharField(
        source="test_clock_id",
        allow_null=True,
        help_text="The test clock (test mode) the customer's Stripe customer lives on; null for none.",
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_object(self, obj: Customer) -> str:
        return "customer"

    def to_representation(self, instance: Customer) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["currency"] = instance.currency or None
        data["stripe_customer_id"] = instance.stripe_customer_id or None
        return data
