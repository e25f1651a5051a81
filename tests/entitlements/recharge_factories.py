"""A factory for auto-recharges (armed, on a credits feature, buying a one-time price). Takes `project=`."""

import factory

from catalog.models import Feature
from entitlements.models import AutoRecharge


class AutoRechargeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AutoRecharge

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    customer = factory.SubFactory(
        "tests.billing.payment_factories.CustomerFactory", project=factory.SelfAttribute("..project")
    )
    feature = factory.SubFactory(
        "tests.entitlements.factories.FeatureFactory",
        project=factory.SelfAttribute("..project"),
        type=Feature.Type.CREDITS,
    )
    price = factory.SubFactory(
        "tests.billing.factories.PriceFactory", project=factory.SelfAttribute("..project")
    )
    below = 100
