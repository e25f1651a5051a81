"""A factory for holds (an active metered hold; its counter is not touched). Takes `project=`; the hold's id is
both its primary key and the tenant's id, so a route that names the tenant's id finds it by either."""

from datetime import timedelta

import factory
from django.utils import timezone

from catalog.models import Feature
from entitlements.models import Hold


class HoldFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Hold

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    id = factory.Sequence(lambda n: f"hold_factory{n}")
    hold_id = factory.SelfAttribute("id")
    customer = factory.SubFactory(
        "tests.billing.payment_factories.CustomerFactory", project=factory.SelfAttribute("..project")
    )
    feature = factory.SubFactory(
        "tests.entitlements.factories.FeatureFactory",
        project=factory.SelfAttribute("..project"),
        type=Feature.Type.ALLOCATION,
    )
    quantity = 1
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))
