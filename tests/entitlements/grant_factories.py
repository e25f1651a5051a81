"""Factories for grants and revocations (the objects the entitlement routes name by id). Each takes `project=`."""

import factory

from entitlements.models import Grant, Revocation


class GrantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Grant

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    customer = factory.SubFactory(
        "tests.billing.payment_factories.CustomerFactory", project=factory.SelfAttribute("..project")
    )
    feature = factory.SubFactory(
        "tests.entitlements.factories.FeatureFactory", project=factory.SelfAttribute("..project")
    )
    value = True
    reason = "goodwill"


class RevocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Revocation

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    customer = factory.SubFactory(
        "tests.billing.payment_factories.CustomerFactory", project=factory.SelfAttribute("..project")
    )
    feature = factory.SubFactory(
        "tests.entitlements.factories.FeatureFactory", project=factory.SelfAttribute("..project")
    )
    reason = "abuse"
