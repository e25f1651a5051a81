"""A factory for a customer's own usage thresholds. Takes `project=`."""

import factory

from catalog.models import Feature
from entitlements.models import UsageThreshold


class UsageThresholdFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageThreshold

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    customer = factory.SubFactory(
        "tests.billing.payment_factories.CustomerFactory", project=factory.SelfAttribute("..project")
    )
    feature = factory.SubFactory(
        "tests.entitlements.factories.FeatureFactory",
        project=factory.SelfAttribute("..project"),
        type=Feature.Type.METERED,
    )
    kind = UsageThreshold.Kind.PERCENT
    value = 50
