"""`/projects/{id}/adoptions` (platform key): adopt a project's existing Stripe account — a run recorded and
queued, its report read back when it is done."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors
from billing.models import AdoptionRun
from billing.services.adoption import adoption_start
from billing.services.adoption_mapping import CUSTOMER_FIELDS
from catalog.apis.catalog import FeatureInput
from core.actors import actor_from_request
from core.base_api import BaseApi
from core.serializers import StrictSerializer
from projects import selectors as project_selectors
from projects.permissions import IsPlatformKey


class AdoptionPointOutput(serializers.Serializer):  # type: ignore[type-arg]
    at = serializers.DateTimeField(source="adopted_at", allow_null=True)
    stripe_time = serializers.IntegerField(
        source="stripe_marker", allow_null=True, help_text="Stripe's clock (Unix seconds) as the reads began."
    )
    newest_event = serializers.CharField(
        source="newest_event_id", help_text="The account's newest event then."
    )
    newest_event_created = serializers.IntegerField(allow_null=True)


class AdoptionRunOutput(serializers.ModelSerializer):  # type: ignore[type-arg]
    object = serializers.SerializerMethodField()
    project = serializers.CharField(source="project_id")
    adoption_point = AdoptionPointOutput(
        source="*",
        help_text="Events Stripe created before it describe states the adoption read: applied only if newer "
        "than what was adopted.",
    )
    customer_key = serializers.JSONField()
    mapping = serializers.JSONField()
    report = serializers.JSONField(
        help_text=(
            "Counts by kind and outcome (`counts`), what was left out (`held_by_another_project`: "
            "`{kind, id}` of each object another project owns, skipped whatever the mapping says; "
            "`unmapped_products`, `customers_without_key`, `customer_conflicts`, `unmapped_subscriptions`, `skipped_prices` and "
            "`subscription_items_not_adopted` with the reason of each and what to do, `subscription_schedules`), "
            "the diff (`changes`, at most 2000 lines of `changes_total`), "
            "`nothing_to_do`, `seconds` and `stripe_reads`. Empty until the run ends."
        )
    )

    class Meta:
        model = AdoptionRun
        fields = [
            "id",
            "object",
            "project",
            "status",
            "dry_run",
            "customer_key",
            "mapping",
            "adoption_point",
            "stripe_reads",
            "report",
            "error",
            "created_at",
            "finished_at",
        ]

    def get_object(self, obj: AdoptionRun) -> str:
        return "adoption_run"


class CustomerKeyInput(StrictSerializer):
    metadata = serializers.CharField(
        min_length=1, max_length=40, required=False, help_text="The Stripe customer metadata key."
    )
    field = serializers.ChoiceField(
        choices=list(CUSTOMER_FIELDS), required=False, help_text="Or the Stripe customer's own field."
    )


class ProductMappedInput(StrictSerializer):
    stripe_product = serializers.CharField(max_length=255, help_text="The Stripe product's id.")
    key = serializers.SlugField(max_length=100, help_text="The product's key here.")
    features = serializers.DictField(
        required=False, help_text="Feature key → the value the product gives (as the catalog API takes it)."
    )


class MappingInput(StrictSerializer):
    features = serializers.ListField(child=FeatureInput(), required=False, max_length=1000)
    products = serializers.ListField(child=ProductMappedInput(), required=False, max_length=1000)
    meters = serializers.DictField(
        child=serializers.SlugField(max_length=100),
        required=False,
        help_text="Stripe billing meter id → the key of the metered feature it counts: the mapped products' "
        "metered prices on that meter are adopted as metered prices of that feature (whose usage Tollgate "
        "then reports to that meter); a metered price whose meter is not named is skipped and listed.",
    )


class AdoptionCreateApi(BaseApi):
    permission_classes = [IsPlatformKey]

    class InputSerializer(StrictSerializer):
        dry_run = serializers.BooleanField(default=False, help_text="Read and report; change nothing.")
        customer_key = CustomerKeyInput(
            help_text="Where a Stripe customer's external id is: exactly one of `metadata` (a metadata key) "
            "or `field` (`email` or `id`). Customers without it are reported, not adopted."
        )
        mapping = MappingInput(
            help_text="`sync_catalog`'s shape: `features` to create and `products`, each naming its Stripe "
            "product. Products it does not name are reported, not guessed. Keys are unique within it."
        )

    @extend_schema(
        operation_id="project_adoptions_create",
        summary="Adopt the project's Stripe account (platform)",
        description=(
            "Platform key: reads the Stripe account the project uses (customers, products and prices, coupons "
            "and promotion codes, subscriptions of every status, invoices and payments), paced under the read "
            "limit, and mirrors what the customer key and the mapping name. Runs in a worker: the answer is the "
            "run, `pending`; read it back for its report. A dry run writes nothing (locally or at Stripe); a "
            "second run adopts only what is new. 400 `invalid_mapping`; 409 `adoption_running` while another "
            "adoption of the project is pending or running."
        ),
        request=InputSerializer,
        responses={202: AdoptionRunOutput},
    )
    def post(self, request: Request, project_id: str) -> Response:
        project = project_selectors.project_get(id_or_slug=project_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = adoption_start(project=project, actor=actor_from_request(request), **serializer.validated_data)
        return Response(AdoptionRunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class AdoptionDetailApi(BaseApi):
    permission_classes = [IsPlatformKey]

    @extend_schema(
        operation_id="project_adoptions_retrieve",
        summary="Retrieve an adoption run (platform)",
        description="Platform key: one adoption run of the project, with its adoption point and report.",
        responses=AdoptionRunOutput,
    )
    def get(self, request: Request, project_id: str, run_id: str) -> Response:
        project = project_selectors.project_get(id_or_slug=project_id)
        return Response(AdoptionRunOutput(selectors.adoption_run_get(project=project, run_id=run_id)).data)
