"""Credits: `GET /credits`, a customer's balance of a credits feature, its lots and its latest ledger
movements.
"""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.models import Feature
from catalog.selectors import feature_by_key
from core.base_api import BaseApi
from core.errors import InvalidRequest
from core.wording import with_article
from customers.models import Customer
from customers.selectors import customer_find, customer_now
from entitlements import selectors
from entitlements.apis.params import (
    CUSTOMER,
    CUSTOMER_PARAMETER,
    ENTITY_CREDITS,
    ENTITY_CREDITS_PARAMETER,
    FEATURE,
    FEATURE_PARAMETER,
)
from entitlements.models import CreditLot
from entitlements.resolver import iso
from projects.authentication import request_project


class CreditLotOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    source = serializers.ChoiceField(choices=CreditLot.Source.choices)  # type: ignore[assignment]
    amount = serializers.IntegerField()
    remaining = serializers.IntegerField()
    priority = serializers.IntegerField(help_text="Spent lowest first, then the lot expiring first.")
    expires_at = serializers.DateTimeField(allow_null=True)
    voided = serializers.BooleanField()
    entity = serializers.CharField(
        allow_null=True, help_text="The entity whose own credits these were granted as; null: the account's."
    )
    returned_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When removing its entity returned the lot to the account (the account's since); null: not.",
    )
    created_at = serializers.DateTimeField()


class CreditLedgerOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    type = serializers.CharField(
        help_text="grant, consume, revoke, hold, hold_return, rollover, forfeited (an entity's removal) or correction (a "
        "usage correction of an event a credits waterfall paid for: + given back, − taken)."
    )
    amount = serializers.IntegerField(help_text="+ granted, − consumed or taken back.")
    lot = serializers.CharField()
    reference = serializers.CharField()
    created_at = serializers.DateTimeField()


class ScheduledCreditsOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    amount = serializers.IntegerField(help_text="Credits the month or week grants (the first pro-rated).")
    starts_at = serializers.DateTimeField(help_text="When they are granted (within 30 s of it).")
    expires_at = serializers.DateTimeField(help_text="When the lot they become expires: the slice's end.")
    rollover = serializers.IntegerField(
        allow_null=True, help_text="At most this many credits the lot before it left unspent carry into it."
    )
    invoice = serializers.CharField(help_text="The paid invoice whose period they belong to.")


class CreditsOutput(serializers.Serializer[Any]):
    object = serializers.CharField(default="credit_balance")
    customer = serializers.CharField()
    feature = serializers.CharField()
    balance = serializers.IntegerField()
    lots = CreditLotOutput(many=True)
    ledger = CreditLedgerOutput(many=True, help_text="Newest first (the latest 100 movements).")
    scheduled = ScheduledCreditsOutput(
        many=True,
        help_text=(
            "Plan credits still to come, soonest first: the months or weeks of paid periods whose product grants "
            'the feature on a cadence (`"cadence": "month"`), until the subscription ends or the period is '
            "refunded."
        ),
    )


class CreditsApi(BaseApi):
    @extend_schema(
        operation_id="credits_retrieve",
        summary="Retrieve a credit balance",
        description=(
            "A customer's balance of a `credits` feature and its ledger (grants, purchases, "
            "consumption, expiries), newest first, and the plan credits scheduled to come (a plan granting "
            "them every month or week). 400 `feature_not_credits` for another feature type. With `entity`, "
            "that entity's own credits (its lots and their ledger, and the plan credits scheduled to it where the "
            "plan gives each entity some with every grant, `per_entity.credits`, while it is live); "
            "without, the account's (the lots it holds, those its removed entities returned to it included; "
            "the ledger of every lot)."
        ),
        parameters=[CUSTOMER_PARAMETER, FEATURE_PARAMETER, ENTITY_CREDITS_PARAMETER],
        responses=CreditsOutput,
    )
    def get(self, request: Request) -> Response:
        project = request_project(request)
        external_id = CUSTOMER.parse(request.query_params)
        feature = feature_by_key(project=project, key=FEATURE.parse(request.query_params))
        if feature.type != Feature.Type.CREDITS:
            raise InvalidRequest(
                f"feature: {feature.key!r} is {with_article(feature.type)} feature, not a credits feature.",
                code="feature_not_credits",
                param="feature",
            )
        entity = ENTITY_CREDITS.parse_optional(request.query_params) or ""
        customer: Customer | None = customer_find(project=project, external_id=external_id)
        body: dict[str, Any] = {
            "object": "credit_balance",
            "customer": external_id,
            "feature": feature.key,
            "balance": 0,
            "lots": [],
            "ledger": [],
            "scheduled": [],
        }
        if customer is not None:
            body["balance"] = selectors.credit_balance(
                customer_id=customer.pk,
                feature_id=feature.pk,
                now=customer_now(customer=customer),
                entity=entity,
            )
            body["lots"] = [
                {
                    "id": lot.pk,
                    "source": lot.source,
                    "amount": lot.amount,
                    "remaining": lot.remaining,
                    "priority": lot.priority,
                    "expires_at": iso(lot.expires_at),
                    "voided": lot.voided_at is not None,
                    "entity": lot.entity or None,
                    "returned_at": iso(lot.returned_at),
                    "created_at": iso(lot.created_at),
                }
                for lot in selectors.credit_lots(
                    project=project, customer=customer, feature=feature, entity=entity
                )
            ]
            body["ledger"] = [
                {
                    "id": entry.pk,
                    "type": entry.type,
                    "amount": entry.amount,
                    "lot": entry.lot_id,
                    "reference": entry.reference,
                    "created_at": iso(entry.created_at),
                }
                for entry in selectors.credit_ledger(
                    project=project, customer=customer, feature=feature, entity=entity
                )
            ]
            body["scheduled"] = [
                {
                    "id": item.pk,
                    "amount": item.entity_amount if entity else item.amount,
                    "starts_at": iso(item.starts_at),
                    "expires_at": iso(item.ends_at),
                    "rollover": None if entity else item.rollover,  # an entity's never roll over
                    "invoice": item.plan_period.invoice_id,
                }
                for item in selectors.credit_slices_scheduled(
                    project=project, customer=customer, feature=feature, entity=entity
                )
            ]
        return Response(body)
