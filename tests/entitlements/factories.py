"""Factories for features and the values products give them. Each takes `project=`."""

import factory

from catalog.models import Feature, ProductFeature


class FeatureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feature

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    key = factory.Sequence(lambda n: f"feature-{n}")
    name = factory.LazyAttribute(lambda o: o.key.replace("-", " ").title())
    type = Feature.Type.BOOLEAN


class ProductFeatureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductFeature

    class Params:
        project = factory.SubFactory("tests.projects.factories.ProjectFactory")

    product = factory.SubFactory(
        "tests.billing.factories.ProductFactory", project=factory.SelfAttribute("..project")
    )
    feature = factory.SubFactory(FeatureFactory, project=factory.SelfAttribute("..project"))
    value = True
