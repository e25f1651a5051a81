"""Factories for agent keys and money move confirmations. Each takes `project=`; a created key carries its
one-time secret as `.secret`."""

from datetime import timedelta

import factory
from django.utils import timezone

from agents.models import AgentKey, MoveConfirmation
from agents.services.keys import AGENT_KEY_PREFIX
from agents.tools import READ_ONLY
from tests.projects.factories import _KeyFactory


class AgentKeyFactory(_KeyFactory):
    _kind_prefix = AGENT_KEY_PREFIX

    class Meta:
        model = AgentKey

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    name = "agent"
    tools = factory.LazyFunction(lambda: sorted(READ_ONLY))


class MoveConfirmationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MoveConfirmation

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    agent_key = factory.SubFactory(AgentKeyFactory, project=factory.SelfAttribute("..project"))
    tool = "refund_request"
    arguments = factory.LazyFunction(dict)
    preview = factory.LazyFunction(dict)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=15))
