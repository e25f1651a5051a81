"""Factories for tenants and keys. A created key carries its one-time secret as `.secret`."""

from typing import Any

import factory

from projects import keys
from projects.models import ApiKey, PlatformKey, Project


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    allowed_redirect_hosts = factory.LazyFunction(lambda: ["app.example.com"])


class _KeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **kwargs: Any) -> Any:
        material = keys.generate(cls._kind_prefix)  # type: ignore[attr-defined]
        kwargs.setdefault("prefix", material.prefix)
        kwargs.setdefault("key_hash", material.key_hash)
        instance = super()._create(model_class, *args, **kwargs)
        instance.secret = material.secret
        return instance


class ApiKeyFactory(_KeyFactory):
    _kind_prefix = keys.PROJECT_KEY_PREFIX

    class Meta:
        model = ApiKey

    project = factory.SubFactory(ProjectFactory)
    name = "test"


class PlatformKeyFactory(_KeyFactory):
    _kind_prefix = keys.PLATFORM_KEY_PREFIX

    class Meta:
        model = PlatformKey

    name = "ops"
