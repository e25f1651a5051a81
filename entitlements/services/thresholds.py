"""A tenant's own thresholds on a customer's feature (`UsageThreshold`). On a metered feature: a percent of the limit
or a number of units used, announced as `usage.threshold_reached` once per period beside 80 % and 100 %. On a
credits feature: a balance (a percent of the credits granted, or a number of credits) announced as
`credits.threshold_reached` when the balance falls to it (`services.balance_thresholds`). They travel
in the customer's cached structure (`resolver`), so a consume reads none of them from the database; creating or
deleting one moves the customer's structure version on commit.
"""

from django.db import IntegrityError, transaction

from catalog.models import Feature
from catalog.selectors import feature_by_key
from core.errors import InvalidRequest, NotFound
from core.wording import with_article
from entitlements import changes
from entitlements.models import UsageThreshold
from entitlements.services.customers import customers_ensure
from projects.models import Project

MAX_PER_FEATURE = 20


def threshold_create(
    *, project: Project, external_id: str, feature_key: str, percent: int | None, quantity: int | None
) -> tuple[UsageThreshold, bool]:
    """The threshold, and whether it is new: the same threshold again is the one stored."""
    feature = feature_by_key(project=project, key=feature_key)
    if feature.type not in (Feature.Type.METERED, Feature.Type.CREDITS):
        raise InvalidRequest(
            f"feature: {feature.key!r} is {with_article(feature.type)} feature; thresholds are for metered features (usage) "
            "and credits features (the balance).",
            code="feature_not_metered",
            param="feature",
        )
    if feature.type == Feature.Type.CREDITS and percent is not None and percent > 100:
        raise InvalidRequest(
            "percent: a balance threshold is at most 100 % of the credits granted.",
            code="invalid_parameter",
            param="percent",
        )
    if percent is not None and quantity is None:
        kind, value = UsageThreshold.Kind.PERCENT, percent
    elif quantity is not None and percent is None:
        kind, value = UsageThreshold.Kind.QUANTITY, quantity
    else:
        raise InvalidRequest("Give either percent or quantity.", code="parameter_missing", param="percent")
    customer_id = customers_ensure(project=project, external_ids=[external_id])[external_id]
    existing = UsageThreshold.objects.filter(
        customer_id=customer_id, feature=feature, kind=kind, value=value
    ).first()
    if existing is not None:
        return existing, False
    if UsageThreshold.objects.filter(customer_id=customer_id, feature=feature).count() >= MAX_PER_FEATURE:
        raise InvalidRequest(
            f"A customer has at most {MAX_PER_FEATURE} thresholds per feature.",
            code="too_many_thresholds",
            param="feature",
        )
    try:
        with transaction.atomic():
            threshold = UsageThreshold.objects.create(
                project=project, customer_id=customer_id, feature=feature, kind=kind, value=value
            )
            changes.structure_changed(project_id=project.pk, external_id=external_id)
    except IntegrityError:  # the same threshold created concurrently
        return UsageThreshold.objects.get(
            customer_id=customer_id, feature=feature, kind=kind, value=value
        ), False
    return threshold, True


def threshold_delete(*, project: Project, threshold_id: str) -> UsageThreshold:
    """Deletes the threshold (a crossing already announced stays announced); the threshold as it was."""
    threshold = (
        UsageThreshold.objects.select_related("customer", "feature")
        .filter(project=project, pk=threshold_id)
        .first()
    )
    if threshold is None:
        raise NotFound(f"No such threshold: {threshold_id!r}.", param="id")
    with transaction.atomic():
        UsageThreshold.objects.filter(pk=threshold.pk).delete()
        changes.structure_changed(project_id=project.pk, external_id=threshold.customer.external_id)
    return threshold
