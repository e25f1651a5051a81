"""Subscriptions API (API.md "Subscriptions and invoices"); invoices are `billing.apis.invoices`."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors
from billing.apis.checkout import MAX_QUANTITY, SubscriptionItemInput, subscription_items_input
from billing.models import Subscription
from billing.representations import SubscriptionOutput
from billing.services.subscription_cancel import subscription_cancel, subscription_resume
from billing.services.subscription_changes import subscription_automatic_tax_set, subscription_change
from billing.services.subscription_create import subscription_create
from billing.services.subscription_items import ItemSpec, subscription_items_parse
from billing.services.subscription_preview import subscription_preview
from catalog import selectors as catalog_selectors
from catalog.models import Price
from core.actors import actor_from_request
from core.base_api import BaseApi
from core.errors import InvalidRequest
from core.idempotency import operation_of
from core.pagination import PAGINATION_PARAMETERS, list_body, list_serializer, paginate_queryset
from core.serializers import MAX_LINE_ITEMS, StrictSerializer, UnixTimeField
from projects.authentication import request_project


def _subscription(request: Request, subscription_id: str) -> Subscription:
    return selectors.subscription_get(project=request_project(request), subscription_id=subscription_id)


def _rendered(subscription: Subscription) -> dict[str, Any]:
    """Stripe's answer to the change (the local mirror follows with Stripe's events)."""
    return dict(SubscriptionOutput(subscription).data)


def _change_input(
    request: Request, data: dict[str, Any]
) -> tuple[Price | None, int | None, list[ItemSpec] | None]:
    """The price and quantity of a change (or its preview): at least one, the price the project's; or instead
    the full list of `items` wanted, checked as a checkout's."""
    if "items" in data:
        if "price" in data or "quantity" in data:
            raise InvalidRequest(
                "Give items, or price and quantity, not both.",
                code="parameter_conflict",
                param="price" if "price" in data else "quantity",
            )
        items = [(item["price"], item.get("quantity")) for item in data["items"]]
        return None, None, subscription_items_parse(project=request_project(request), items=items)
    if (
        "price" not in data
        and "quantity" not in data
        and not data.get("promotion_code")
        and "automatic_tax" not in data
    ):
        raise InvalidRequest(
            "Give a price, a quantity, items, a promotion_code or automatic_tax to change.",
            code="parameter_missing",
            param="price",
        )
    price = (
        catalog_selectors.price_get(project=request_project(request), key_or_id=data["price"], param="price")
        if "price" in data
        else None
    )
    return price, data.get("quantity"), None


class SubscriptionListApi(BaseApi):
    class InputSerializer(StrictSerializer):
        customer = serializers.CharField(
            max_length=255, help_text="Your user id (the customer's external_id)."
        )
        price = serializers.CharField(required=False, help_text="A recurring price: its key or id.")
        quantity = serializers.IntegerField(
            min_value=1, max_value=MAX_QUANTITY, required=False, help_text="With `price`; default 1."
        )
        items: serializers.ListSerializer[Any] = serializers.ListSerializer(
            child=SubscriptionItemInput(),
            required=False,
            max_length=MAX_LINE_ITEMS,
            help_text=(
                "Instead of `price`: several recurring prices of one currency and interval (at most 20; a "
                "metered price takes no quantity)."
            ),
        )
        trial_days = serializers.IntegerField(min_value=0, max_value=730, required=False)
        proration_behavior = serializers.ChoiceField(
            choices=["create_prorations", "none", "always_invoice"], required=False
        )
        promotion_code = serializers.CharField(
            max_length=100,
            required=False,
            help_text="A promotion code to redeem (400 `promotion_code_invalid` if it cannot be).",
        )
        automatic_tax = serializers.BooleanField(
            required=False,
            default=False,
            help_text="Stripe Tax on the subscription's invoices: every price needs a `tax_behavior`, and "
            "Stripe the customer's address (saved by a checkout with automatic tax).",
        )

    @extend_schema(
        operation_id="subscriptions_create",
        summary="Create a subscription",
        description=(
            "Creates a subscription at Stripe server-side, without Checkout, paid with the customer's "
            "saved default payment method (`payment_behavior=error_if_incomplete`): a declined first "
            "payment is 402 `card_error` with `decline_code`, and nothing is left behind, at Stripe or "
            "here. 201 with the subscription as mirrored from Stripe's answer. Errors: 400 "
            "`no_payment_method` (no Stripe customer or no saved default card), `parameter_conflict`, "
            "the item checks of a checkout (`currency_mixed`, `interval_mismatch`, `duplicate_price`, "
            "`quantity_not_allowed`, `too_many_items`, `price_not_recurring`), "
            "`promotion_code_invalid`, `tax_behavior_unspecified` and Stripe's "
            "`customer_tax_location_invalid` (with `automatic_tax`: the first invoice and its payment then "
            "carry the tax); 404 an unknown customer or price; 409 `already_subscribed` (decided while the "
            "customer's other subscription writes wait: two requests for one product at once make one "
            "subscription), `currency_mismatch`; 429 `subscription_change_in_progress` when another one "
            "of the customer's takes more than 30 s."
        ),
        request=InputSerializer,
        responses={201: SubscriptionOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = request_project(request)
        items = subscription_items_input(data)
        if items is None:
            price = catalog_selectors.price_get(project=project, key_or_id=data["price"], param="price")
            if not price.is_recurring or not price.active or not price.stripe_price_id:
                raise InvalidRequest(
                    "price must be an active recurring price.", code="price_not_recurring", param="price"
                )
            metered = price.usage_type == Price.UsageType.METERED
            if metered and "quantity" in data:
                raise InvalidRequest(
                    "A metered price takes no quantity.", code="quantity_not_allowed", param="quantity"
                )
            specs = [ItemSpec(price=price, quantity=None if metered else data.get("quantity", 1))]
        else:
            specs = subscription_items_parse(project=project, items=items)
        created = subscription_create(
            project=project,
            actor=actor_from_request(request),
            customer=data["customer"],
            items=specs,
            several=items is not None,
            trial_days=data.get("trial_days"),
            proration_behavior=data.get("proration_behavior"),
            promotion_code=data.get("promotion_code"),
            automatic_tax=data["automatic_tax"],
            operation=operation_of(request),
        )
        return Response(SubscriptionOutput(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="subscriptions_list",
        summary="List subscriptions",
        description=(
            "The project's subscriptions mirrored from Stripe, newest first, filtered by "
            "`customer`, `status` (Stripe's) or `product`."
        ),
        parameters=[
            *PAGINATION_PARAMETERS,
            OpenApiParameter("customer", OpenApiTypes.STR),
            OpenApiParameter("status", {"type": "string", "enum": list(Subscription.Status.values)}),
            OpenApiParameter("product", OpenApiTypes.STR),
        ],
        responses=list_serializer(SubscriptionOutput, "SubscriptionList"),
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        if (status := params.get("status")) and status not in Subscription.Status.values:
            raise InvalidRequest(f"Unknown status {status!r}.", code="invalid_parameter", param="status")
        queryset = selectors.subscription_list(
            project=request_project(request),
            customer=params.get("customer"),
            status=status,
            product=params.get("product"),
        )
        rows, has_more = paginate_queryset(queryset, request)
        return Response(list_body(SubscriptionOutput(rows, many=True).data, has_more))


class SubscriptionDetailApi(BaseApi):
    tenant_lookup = {"subscription_id": Subscription}

    class InputSerializer(StrictSerializer):
        price = serializers.CharField(required=False, help_text="The new recurring price (key or id).")
        quantity = serializers.IntegerField(min_value=1, max_value=10_000, required=False)
        items: serializers.ListSerializer[Any] = serializers.ListSerializer(
            child=SubscriptionItemInput(),
            required=False,
            max_length=MAX_LINE_ITEMS,
            help_text=(
                "Instead of price/quantity: the full list of items wanted. An item whose price (or product) "
                "stays keeps its place (a new price of the same product replaces it), a quantity not given "
                "is kept, items left out are removed, new ones added."
            ),
        )
        proration_behavior = serializers.ChoiceField(
            choices=["create_prorations", "none", "always_invoice"],
            required=False,
            help_text="Given, the change applies now with it, whatever the project's proration rule. Not "
            "given, the rule for the change's direction decides: `now_prorate` (`create_prorations`, the "
            "default), `now_no_proration` (`none`) or `period_end` (scheduled for the period's end). A change "
            "that replaces or removes a metered price is scheduled for the period's end either way (Stripe "
            "would bill the period's usage so far under it to nobody).",
        )
        payment_behavior = serializers.ChoiceField(
            choices=[
                "allow_incomplete",
                "default_incomplete",
                "error_if_incomplete",
                "pending_if_incomplete",
            ],
            required=False,
            help_text="Upgrades default to pending_if_incomplete: a failed upgrade payment changes nothing.",
        )
        automatic_tax = serializers.BooleanField(
            required=False,
            help_text="Turn Stripe Tax on (or off) for the next invoices; the price needs a `tax_behavior` "
            "and Stripe the customer's address (from a checkout with automatic tax).",
        )
        promotion_code = serializers.CharField(
            max_length=100,
            required=False,
            help_text="A promotion code to apply from now on (400 `promotion_code_invalid` if it cannot be).",
        )

    @extend_schema(
        operation_id="subscriptions_retrieve",
        summary="Retrieve a subscription",
        description=(
            "One subscription with its items, period and cancellation state, as last mirrored from Stripe."
        ),
        responses=SubscriptionOutput,
    )
    def get(self, request: Request, subscription_id: str) -> Response:
        return Response(SubscriptionOutput(_subscription(request, subscription_id)).data)

    @extend_schema(
        operation_id="subscriptions_update",
        summary="Change a subscription",
        description=(
            "Changes the price (including monthly ↔ yearly) or the quantity of a subscription at "
            "Stripe, or its whole list of `items` (kept, replaced within a product, added, removed), "
            "with `proration_behavior`; a quantity not given is kept. Another billing interval "
            "restarts the period at the change and invoices it now, with the unused time credited (unless "
            "`proration_behavior` is `none`). Upgrades and interval changes default to "
            "`pending_if_incomplete`: a failed payment changes nothing. `promotion_code` applies a "
            "discount (its coupon's duration counts from now). Errors: 400 `parameter_missing` (neither "
            "price nor quantity), `parameter_conflict` (items with price or quantity), "
            "`price_not_recurring`, `interval_mismatch` (a `price` of another interval while the "
            "subscription's other items, a metered one say, stay on theirs: Stripe bills every item on one "
            "interval, so change them all at once with `items`), `promotion_code_invalid`, and for `items` "
            "the checks of a checkout "
            "(`param` naming the index); 409 `subscription_ended`, `currency_mismatch`, "
            "`already_subscribed` (an item or price adds a product another live subscription of the "
            "customer has); 402 when the card is declined. `automatic_tax` turns Stripe Tax on or off (alone or with a change; 400 "
            "`tax_behavior_unspecified`, `customer_tax_location_invalid`). The project's proration rule for "
            "the change's direction (upgrade, downgrade, interval change) decides when it applies unless the "
            "body gives `proration_behavior`: a `period_end` change is scheduled at Stripe for the end of the "
            "period and shown in `pending_change` (a later change replaces it, an immediate one drops it); "
            "409 `subscription_canceling` for one on a subscription that cancels then, 400 "
            "`parameter_conflict` with a `promotion_code`."
        ),
        request=InputSerializer,
        responses=SubscriptionOutput,
    )
    def patch(self, request: Request, subscription_id: str) -> Response:
        subscription = _subscription(request, subscription_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "automatic_tax" in data and not (
            {"price", "quantity", "items"} & set(data) or data.get("promotion_code")
        ):
            updated = subscription_automatic_tax_set(
                subscription=subscription, actor=actor_from_request(request), enabled=data["automatic_tax"]
            )
            return Response(_rendered(updated))
        price, quantity, items = _change_input(request, data)
        updated = subscription_change(
            subscription=subscription,
            actor=actor_from_request(request),
            price=price,
            quantity=quantity,
            items=items,
            proration_behavior=data.get("proration_behavior"),
            payment_behavior=data.get("payment_behavior"),
            promotion_code=data.get("promotion_code"),
            automatic_tax=data.get("automatic_tax"),
        )
        return Response(_rendered(updated))


class SubscriptionPreviewLineOutput(serializers.Serializer[Any]):
    description = serializers.CharField()
    amount = serializers.IntegerField()
    quantity = serializers.IntegerField(allow_null=True)
    proration = serializers.BooleanField()
    period_start = UnixTimeField(allow_null=True)
    period_end = UnixTimeField(allow_null=True)


class SubscriptionPreviewOutput(serializers.Serializer[Any]):
    amount_due = serializers.IntegerField()
    currency = serializers.CharField()
    subtotal = serializers.IntegerField(help_text="The lines added up, before discounts and tax.")
    discount = serializers.IntegerField(help_text="What the discounts take off the subtotal.")
    tax = serializers.IntegerField(help_text="Stripe Tax's amount (0 without automatic tax).")
    total = serializers.IntegerField(help_text="subtotal − discount + exclusive tax.")
    lines = SubscriptionPreviewLineOutput(many=True)
    rule = serializers.ChoiceField(
        choices=["now_prorate", "now_no_proration", "period_end", "requested"],
        help_text="What decides the change: the project's proration rule for its direction, or `requested` "
        "(the body's `proration_behavior`).",
    )
    change = serializers.ChoiceField(
        choices=["upgrade", "downgrade", "interval_change"],
        allow_null=True,
        help_text="The change's direction (null for a change of no price, quantity or items).",
    )
    effective_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When a change deferred by the rule takes effect (the period's end; nothing is invoiced "
        "now); null when it applies now.",
    )


class SubscriptionPreviewApi(BaseApi):
    tenant_lookup = {"subscription_id": Subscription}

    # The same body as the change (`payment_behavior` is accepted and changes nothing: a preview pays nothing).
    InputSerializer = SubscriptionDetailApi.InputSerializer

    @extend_schema(
        operation_id="subscriptions_preview",
        summary="Preview a subscription change",
        description=(
            "What `PATCH /subscriptions/{id}` with the same body would invoice, from Stripe's invoice "
            "preview: with `always_invoice` the prorations invoiced now, otherwise the next renewal invoice "
            "with them; for a change of billing interval, the invoice made at once (the new period in full, "
            "the unused time credited). A `promotion_code` shows its discount (nothing is redeemed) and "
            "`automatic_tax` the tax with Stripe Tax on or off (nothing is turned on). Amounts in minor "
            "units; period bounds are Unix seconds. `rule`, `change` and `effective_at` say what the "
            "project's proration rule will do: a change deferred to the period's end invoices nothing now "
            "(`amount_due` 0, no lines, `effective_at` the period's end). Changes nothing, at Stripe or here. "
            "Errors as for the "
            "change: 400 `parameter_missing`, `parameter_conflict`, `price_not_recurring`, `interval_mismatch`, "
            "`promotion_code_invalid`, `tax_behavior_unspecified`, `customer_tax_location_invalid`; 409 "
            "`subscription_ended`, `currency_mismatch`, `already_subscribed`."
        ),
        request=InputSerializer,
        responses=SubscriptionPreviewOutput,
    )
    def post(self, request: Request, subscription_id: str) -> Response:
        subscription = _subscription(request, subscription_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        price, quantity, items = _change_input(request, data)
        preview = subscription_preview(
            subscription=subscription,
            price=price,
            quantity=quantity,
            items=items,
            proration_behavior=data.get("proration_behavior"),
            promotion_code=data.get("promotion_code"),
            automatic_tax=data.get("automatic_tax"),
        )
        return Response(SubscriptionPreviewOutput(preview).data)


class SubscriptionCancelApi(BaseApi):
    tenant_lookup = {"subscription_id": Subscription}

    class InputSerializer(StrictSerializer):
        at_period_end = serializers.BooleanField(default=True)

    @extend_schema(
        operation_id="subscriptions_cancel",
        summary="Cancel a subscription",
        description=(
            "Cancels at Stripe, at the end of the current period by default (`at_period_end: "
            "false` ends it now). A subscription with a metered price is billed its period's "
            "usage on a final invoice as it ends (now: the usage so far, reported first). A "
            "cancellation Stripe already has is not sent again, so repeating is harmless. 409 "
            "`subscription_ended` for one that already ended."
        ),
        request=InputSerializer,
        responses=SubscriptionOutput,
    )
    def post(self, request: Request, subscription_id: str) -> Response:
        subscription = _subscription(request, subscription_id)
        serializer = self.InputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        updated = subscription_cancel(
            subscription=subscription,
            actor=actor_from_request(request),
            at_period_end=serializer.validated_data["at_period_end"],
            operation=operation_of(request),
        )
        return Response(_rendered(updated))


class SubscriptionResumeApi(BaseApi):
    tenant_lookup = {"subscription_id": Subscription}

    @extend_schema(
        operation_id="subscriptions_resume",
        summary="Resume a subscription",
        description=(
            "Undoes a scheduled cancellation, or resumes a paused subscription, at Stripe "
            "(decided on Stripe's current state). 409 `nothing_to_resume` when it is neither."
        ),
        request=None,
        responses=SubscriptionOutput,
    )
    def post(self, request: Request, subscription_id: str) -> Response:
        resumed = subscription_resume(
            subscription=_subscription(request, subscription_id),
            actor=actor_from_request(request),
            operation=operation_of(request),
        )
        return Response(_rendered(resumed))
