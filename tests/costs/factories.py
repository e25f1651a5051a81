"""Factories for cost tables. Each takes `project=`."""

import factory
from django.utils import timezone

from costs.models import CostTable


class CostTableFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CostTable

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    version = factory.Sequence(lambda n: n + 1)
    currency = "usd"
    starts_at = factory.LazyFunction(timezone.now)
    models = factory.LazyFunction(
        lambda: {"gpt-4o": {"input_tokens": {"micros": 2_500_000, "per": 1_000_000}}}
    )
