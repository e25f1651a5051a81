"""A usage correction of project A's (for the cross-tenant sweep). Takes `project=`."""

import factory
from django.utils import timezone

from catalog.models import Feature
from entitlements.models import UsageCorrection


class UsageCorrectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageCorrection

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    id = factory.Sequence(lambda n: f"ucor_factory{n}")
    correction_id = factory.SelfAttribute("id")  # the path names it by the tenant's id
    customer = factory.SubFactory(
        "tests.billing.payment_factories.CustomerFactory", project=factory.SelfAttribute("..project")
    )
    feature = factory.SubFactory(
        "tests.entitlements.factories.FeatureFactory",
        project=factory.SelfAttribute("..project"),
        type=Feature.Type.METERED,
    )
    usage_event_id = "uev_factory"
    event_id = "e1"
    event_timestamp = factory.LazyFunction(timezone.now)
    event_created_at = factory.LazyFunction(timezone.now)
    action = UsageCorrection.Action.VOID
    quantity_before = 5
    quantity_after = 0
    reason = "a bad deploy"
