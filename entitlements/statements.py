"""The hottest reads of entitlements, compiled once per connection (`core.statements`): every subscription,
purchase or grant a worker applies recomputes its customer's entitlements, every paid payment asks whether it has
purchases or a plan period, and every recompute and uncached answer reads the customer's usage; building these
querysets cost the worker more than running them. Each is the queryset its caller used to build in place, with the
same filters and order."""

from datetime import datetime

from django.db.models import Min, Q, Subquery, Sum

from catalog.models import Feature, Price, Product, ProductFeature
from core.statements import Statement
from entitlements.models import (
    AllocationCounter,
    AutoRecharge,
    CreditLot,
    EntitlementSettings,
    EntitlementState,
    Grant,
    Hold,
    PlanPeriod,
    Purchase,
    Revocation,
    SpendCap,
    SubscriptionSource,
    UsageCounter,
    UsageThreshold,
    UsageWindowCounter,
)

SETTINGS = Statement(
    lambda project_id: EntitlementSettings.objects.filter(project_id=project_id).order_by("pk")[:1]
)
FEATURES = Statement(lambda project_id: Feature.objects.filter(project_id=project_id).order_by("key"))
# With the project's default product, read with every feature row: a project without features gets nothing from it.
FEATURES_AND_DEFAULT: Statement[Feature] = Statement(
    lambda project_id, default_product: (
        Feature.objects.filter(project_id=project_id)
        .order_by("key")
        .annotate(
            default_product_pk=Subquery(
                Product.objects.filter(project_id=project_id, key=default_product)
                .order_by("pk")
                .values("pk")[:1]
            )
        )
    )
)
_LIVE = (
    SubscriptionSource.Status.ACTIVE,
    SubscriptionSource.Status.TRIALING,
    SubscriptionSource.Status.PAST_DUE,
)
SUBSCRIPTIONS = Statement(
    lambda customer_id: SubscriptionSource.objects.filter(customer_id=customer_id, status__in=_LIVE).order_by(
        "created_at", "pk"
    )
)
PURCHASES = Statement(
    lambda customer_id, now: (
        Purchase.objects.filter(customer_id=customer_id, starts_at__lte=now)
        .filter(revoked_at__isnull=True)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .values_list("pk", "product_id", "quantity", "ends_at", "payment_status", "dispute_status")
    ),
    now=datetime,
)
GRANTS = Statement(
    lambda customer_id, now: (
        Grant.objects.filter(deleted_at__isnull=True, customer_id=customer_id)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by("created_at", "pk")
    ),
    now=datetime,
)
REVOCATIONS = Statement(
    lambda customer_id, now: Revocation.objects.filter(
        deleted_at__isnull=True, customer_id=customer_id
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)),
    now=datetime,
)
THRESHOLDS = Statement(
    lambda customer_id: (
        UsageThreshold.objects.filter(customer_id=customer_id)
        .order_by("created_at", "pk")
        .values_list("feature_id", "id", "kind", "value")
    )
)
RECHARGES = Statement(
    lambda customer_id: AutoRecharge.objects.filter(customer_id=customer_id).values_list(
        "feature_id", "below"
    )
)
STATE = Statement(
    lambda customer_id: (
        EntitlementState.objects.select_for_update()
        .filter(customer_id=customer_id)
        .values_list("digest", flat=True)
        .order_by("pk")[:1]
    )
)


PRODUCT_VALUES = Statement(
    lambda product_ids: ProductFeature.objects.filter(product_id__in=product_ids).values_list(
        "product_id",
        "product__key",
        "product__version",
        "feature_id",
        "value",
        "per_unit",
        "overage",
        "windows",
        "cap",
        "credits",
        "per_entity",
    ),
    product_ids=list,
)
# Whether a payment has purchases (recorded only under the payment's row lock) or a settled plan period.
PURCHASED = Statement(
    lambda payment_id: (
        Purchase.objects.filter(payment_id=payment_id).order_by().values_list("pk", flat=True)[:1]
    )
)
PERIOD_RECORDED = Statement(
    lambda payment_id: (
        PlanPeriod.objects.filter(payment_id=payment_id).order_by().values_list("pk", flat=True)[:1]
    )
)
# The one-time prices among a payment's lines, with their products.
ONE_TIME_PRICES = Statement(
    lambda project_id, price_ids: Price.objects.filter(
        project_id=project_id, pk__in=price_ids, type=Price.Type.ONE_TIME
    ).select_related("product"),
    price_ids=list,
)


# The usage part of an answer (`usage_read`): counters in the period, allocations in use, credit balances, holds.
USED = Statement(
    lambda customer_id, feature_ids, starts: UsageCounter.objects.filter(
        customer_id=customer_id, feature_id__in=feature_ids, period_start__in=starts
    ).values_list("feature_id", "period_start", "used", "held", "covered"),
    feature_ids=list,
    starts=list[datetime],
)
SPEND_CAPS = Statement(
    lambda customer_id: (
        SpendCap.objects.filter(customer_id=customer_id).order_by("pk").values_list("feature_id", "cap", "id")
    )
)
WINDOWS = Statement(
    lambda customer_id, feature_ids: UsageWindowCounter.objects.filter(
        customer_id=customer_id, feature_id__in=feature_ids
    ).values_list("feature_id", "span", "window_start", "used", "held"),
    feature_ids=list,
)
IN_USE = Statement(
    lambda customer_id: AllocationCounter.objects.filter(customer_id=customer_id).values_list(
        "feature_id", "in_use", "held"
    )
)
BALANCES = Statement(
    lambda customer_id, now: (
        CreditLot.objects.filter(customer_id=customer_id, voided_at__isnull=True, remaining__gt=0)
        .filter(CreditLot.owned_by(""))  # the account's: an entity's own are spent only by uses naming it
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .values_list("feature_id")
        .annotate(total=Sum("remaining"), next_expiry=Min("expires_at"))
    ),
    now=datetime,
)
# The active holds of credits features, and of metered features whose credits waterfall holds their credits.
HELD = Statement(
    lambda customer_id, feature_ids: (
        Hold.objects.filter(Q(feature_id__in=feature_ids) | Q(paid_with_id__in=feature_ids))
        .filter(customer_id=customer_id, status=Hold.Status.ACTIVE)
        .values_list("feature_id", "paid_with_id", "quantity", "consumed", "covered", "credit_cost")
    ),
    feature_ids=list,
)
