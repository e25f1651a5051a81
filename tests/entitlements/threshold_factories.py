"""Factories for a customer's own usage thresholds and spend caps. Take `project=`."""

import factory

from catalog.models import Feature
from entitlements.models import SpendCap, UsageThreshold


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


class SpendCapFactory(factory.django.DjangoModelFactory):
    """A customer's own spend cap. Takes `project=`."""

    class Meta:
        model = SpendCap

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    customer = factory.SubFactory(
        "tests.billing.payment_factories.CustomerFactory", project=factory.SelfAttribute("..project")
    )
    feature = factory.SubFactory(
        "tests.entitlements.factories.FeatureFactory",
        project=factory.SelfAttribute("..project"),
        type=Feature.Type.METERED,
    )
    cap = factory.LazyFunction(lambda: {"units": 100, "at_cap": "block"})
