"""A test clock row for tests that need one without Stripe (the cross-tenant sweep). Takes `project=`."""

from datetime import timedelta

import factory
from django.utils import timezone

from customers.models import TestClock


class ClockFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TestClock

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    name = "Renewals"
    frozen_time = factory.LazyFunction(lambda: timezone.now().replace(microsecond=0))
    deletes_after = factory.LazyAttribute(lambda o: o.frozen_time + timedelta(days=30))
    stripe_test_clock_id = factory.Sequence(lambda n: f"clock_factory{n}")
