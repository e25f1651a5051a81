"""`POST /subscriptions/version_moves`: subscribers of a product moved to another of its published versions now,
or a preview of what each would see (`billing.services.version_moves`)."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.apis.subscriptions import SubscriptionPreviewLineOutput
from billing.services.version_moves import (
    MAX_LISTED,
    NOW,
    PERIOD_END,
    VersionMoves,
    subscriptions_version_move,
)
from catalog.apis.versions import VersionChangeOutput
from catalog.selectors import product_get_detailed
from core.actors import actor_from_request
from core.base_api import BaseApi
from core.serializers import StrictSerializer
from projects.authentication import request_project


class VersionMoveInput(StrictSerializer):
    product = serializers.CharField(help_text="The product's key or id.")
    to_version = serializers.IntegerField(min_value=1, help_text="A published version of the product.")
    from_versions = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        allow_empty=False,
        min_length=1,  # `minItems` in the schema: `allow_empty` alone states nothing there
        help_text="Only the subscriptions on these versions (default: every one not on `to_version`).",
    )
    subscriptions = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        allow_empty=False,
        min_length=1,
        max_length=MAX_LISTED,
        help_text=f"Only these subscriptions (`subs_…` ids, at most {MAX_LISTED}).",
    )
    prices = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        allow_empty=False,
        min_length=1,
        max_length=100,
        help_text="Only the subscriptions holding one of these prices of the product (keys): a plan, say the "
        "monthly one.",
    )
    when = serializers.ChoiceField(
        choices=[NOW, PERIOD_END],
        default=NOW,
        help_text="`now`, or `period_end`: at the end of each subscription's current period (its answers and "
        "the invoice of the period that starts then follow the new version; announced as it takes effect). A "
        "subscription with a move scheduled that is moved to the version it is on has the move canceled.",
    )
    preview = serializers.BooleanField(
        default=False, help_text="Say what each move would change, and move nothing."
    )
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=500, help_text="For the audit log."
    )


class VersionPriceMoveOutput(serializers.Serializer[Any]):
    price = serializers.CharField(help_text="The price's key.")
    before = serializers.CharField(help_text="The Stripe price the item is on.")
    after = serializers.CharField(help_text="The version's Stripe price it moves to.")
    quantity = serializers.IntegerField(allow_null=True, help_text="null for a metered item.")


class VersionMoveInvoiceOutput(serializers.Serializer[Any]):
    amount_due = serializers.IntegerField(
        help_text="Stripe's invoice preview with the price moves: the next invoice, with their prorations (when "
        "the rule prorates) and the renewal at the new prices; 0 for moves at the period's end."
    )
    total = serializers.IntegerField()
    currency = serializers.CharField()
    lines = SubscriptionPreviewLineOutput(
        many=True, help_text="Its lines: the prorations, then the renewal's."
    )
    effective_at = serializers.DateTimeField(
        allow_null=True, help_text="When the new prices apply: null now, else the period's end (nothing now)."
    )


class VersionMoveOutput(serializers.Serializer[Any]):
    subscription = serializers.CharField(source="subscription.pk")
    customer = serializers.CharField(source="subscription.customer.external_id")
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    effective_at = serializers.DateTimeField(
        allow_null=True, help_text="When the move takes effect (its current period's end); null: now."
    )
    changes = VersionChangeOutput(
        many=True, help_text="What the move changes of the subscriber's feature values, per feature key."
    )
    moved = serializers.BooleanField(help_text="false in a preview (and true for one scheduled).")
    prices = VersionPriceMoveOutput(
        many=True,
        help_text="The subscription's items moved to the Stripe prices the version froze (a version published "
        "by a draft that repriced them); empty when they are on them already.",
    )
    proration = serializers.ChoiceField(
        choices=["now_prorate", "now_no_proration", "period_end"],
        allow_null=True,
        help_text="How the price moves apply: the project's proration rule for their direction (an upgrade when "
        "the version's licensed prices cost more), or `period_end` when asked; null without price moves.",
    )
    invoice = VersionMoveInvoiceOutput(
        allow_null=True,
        help_text="In a preview with price moves: Stripe's invoice preview of them. Else null.",
    )


class VersionMovesOutput(serializers.Serializer[Any]):
    object = serializers.SerializerMethodField()
    product = serializers.CharField(source="product.key")
    to_version = serializers.IntegerField()
    when = serializers.CharField(help_text="`now` or `period_end`.")
    preview = serializers.BooleanField()
    moved = serializers.SerializerMethodField(help_text="How many subscriptions this request moved.")
    moves = VersionMoveOutput(many=True, help_text="One per subscription moved (or, in a preview, to move).")

    def get_object(self, obj: VersionMoves) -> str:
        return "version_moves"

    def get_moved(self, obj: VersionMoves) -> int:
        return sum(1 for move in obj.moves if move.moved)


class VersionMovesApi(BaseApi):
    @extend_schema(
        operation_id="subscriptions_version_moves",
        summary="Move subscribers to another version of a product",
        description=(
            "Puts the live subscriptions of `product` (those on `from_versions`, holding one of `prices`, or the "
            "`subscriptions` named) "
            "on its published version `to_version`, now or at the end of each one's period (`when`): their "
            "entitlements are the version's from then on, and their plan credits from their next paid period. Each subscription moved is audited and announced "
            "once (`subscription.version_changed`, with the version before in `previous_attributes`); one "
            "already on `to_version` is not moved again, so a retry, or a second run after a failure, moves "
            "only what is left. Moving back is a move to the earlier version. When the version froze other "
            "Stripe prices than the subscription's items are on (a draft that repriced them), the items move to "
            "them at Stripe first (`prices`), now or at the period's end as the project's proration rule for "
            "the direction says (`proration`; `when: period_end` waits for the period's end), and the version "
            "follows. `preview: true` answers what each move would change (with Stripe's invoice preview of the "
            "price moves, `invoice`) and moves nothing. Errors: 400 `unknown_version`, `unknown_price`; 404 for a "
            "product or a subscription of another project."
        ),
        request=VersionMoveInput,
        responses=VersionMovesOutput,
    )
    def post(self, request: Request) -> Response:
        serializer = VersionMoveInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        product = product_get_detailed(
            project=request_project(request), key_or_id=data["product"], param="product"
        )
        moves = subscriptions_version_move(
            actor=actor_from_request(request),
            product=product,
            to_version=data["to_version"],
            when=data["when"],
            from_versions=data.get("from_versions"),
            subscriptions=data.get("subscriptions"),
            prices=data.get("prices"),
            preview=data["preview"],
            reason=data.get("reason", ""),
        )
        return Response(VersionMovesOutput(moves).data)
