"""`POST /subscriptions/version_moves`: subscribers of a product moved to another of its published versions now,
or a preview of what each would see (`billing.services.version_moves`)."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

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
        help_text="Only the subscriptions on these versions (default: every one not on `to_version`).",
    )
    subscriptions = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        allow_empty=False,
        max_length=MAX_LISTED,
        help_text=f"Only these subscriptions (`subs_…` ids, at most {MAX_LISTED}).",
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
            "Puts the live subscriptions of `product` (those on `from_versions`, or the `subscriptions` named) "
            "on its published version `to_version`, now or at the end of each one's period (`when`): their "
            "entitlements are the version's from then on, and their plan credits from their next paid period. Each subscription moved is audited and announced "
            "once (`subscription.version_changed`, with the version before in `previous_attributes`); one "
            "already on `to_version` is not moved again, so a retry, or a second run after a failure, moves "
            "only what is left. Moving back is a move to the earlier version. Nothing changes at Stripe: the "
            "subscription keeps its prices. `preview: true` answers what each move would change and moves "
            "nothing. Errors: 400 `unknown_version`; 404 for a product or a subscription of another project."
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
            preview=data["preview"],
            reason=data.get("reason", ""),
        )
        return Response(VersionMovesOutput(moves).data)
