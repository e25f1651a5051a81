"""Factories of a customer's entities (issue #51 point 5)."""

import factory

from catalog.models import Feature
from entitlements.models import Entity


class EntityFactory(factory.django.DjangoModelFactory):
    """A live entity of a customer, counted by an allocation feature. Takes `project=`."""

    class Meta:
        model = Entity

    id = factory.Sequence(lambda n: f"ent_factory{n:06d}")
    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    customer = factory.SubFactory(
        "tests.billing.payment_factories.CustomerFactory", project=factory.SelfAttribute("..project")
    )
    feature = factory.SubFactory(
        "tests.entitlements.factories.FeatureFactory",
        project=factory.SelfAttribute("..project"),
        type=Feature.Type.ALLOCATION,
    )
    external_id = factory.Sequence(lambda n: f"seat-{n}")
    name = "A seat"
