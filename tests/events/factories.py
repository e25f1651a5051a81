"""Factories for outbound webhook endpoints and events. Each takes `project=`."""

import factory

from events.models import Event, WebhookEndpoint


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    url = "https://hooks.example.com/tollgate"
    events = factory.LazyFunction(lambda: ["*"])
    secret = factory.Sequence(lambda n: f"whsec_factory_{n}")


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    type = "payment.succeeded"
    sequence = factory.Sequence(lambda n: n + 1)
    data = factory.LazyFunction(lambda: {"object": {"id": "pay_factory", "object": "payment"}})
