"""The generic cross-tenant sweep: every tenant route that names an object answers 404 to another project.

It discovers routes from the URL resolver, so a new endpoint joins the sweep without editing this file. A
tenant view declares `tenant_lookup = {"<url kwarg>": Model}`; the sweep creates each object for project A
with the model's factory (from any `tests/**/*factories.py`, called with `project=`), calls every method of the
route with project B's key, and asserts 404 `not_found` and that no row in any table changed.
"""

import importlib
import pkgutil
from typing import Any

import factory
import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

import tests
from core.apis import BaseApi
from projects.permissions import IsPlatformKey


def _walk(patterns: list[Any], prefix: str = "") -> list[tuple[str, URLPattern]]:
    found: list[tuple[str, URLPattern]] = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            found.extend(_walk(entry.url_patterns, prefix + str(entry.pattern)))
        elif isinstance(entry, URLPattern):
            found.append((prefix + str(entry.pattern), entry))
    return found


def tenant_routes() -> list[tuple[str, type[BaseApi]]]:
    routes: dict[str, type[BaseApi]] = {}
    for route, pattern in _walk(get_resolver().url_patterns):
        view_class = getattr(pattern.callback, "view_class", None)
        if not route.startswith("api/v1/") or "<" not in route or view_class is None:
            continue
        if not issubclass(view_class, BaseApi) or IsPlatformKey in view_class.permission_classes:
            continue
        if not view_class.authentication_classes:  # public by design (the plans page): no tenant to cross
            continue
        routes.setdefault(route.rstrip("/"), view_class)
    return sorted(routes.items())


def _factories() -> dict[type, type[factory.django.DjangoModelFactory]]:
    registry: dict[type, type[factory.django.DjangoModelFactory]] = {}
    for module_info in pkgutil.walk_packages(tests.__path__, "tests."):
        if module_info.name.rsplit(".", 1)[-1].endswith("factories"):
            module = importlib.import_module(module_info.name)
            for value in vars(module).values():
                if (
                    isinstance(value, type)
                    and issubclass(value, factory.django.DjangoModelFactory)
                    and value._meta.model is not None
                    and not value._meta.abstract
                ):
                    registry.setdefault(value._meta.model, value)
    return registry


def _snapshot() -> dict[str, list[dict[str, Any]]]:
    return {
        model._meta.label: sorted(model.objects.values(), key=lambda row: str(row.get("id", row)))
        for model in apps.get_models()
        if model._meta.app_label in {"core", "projects", "billing", "entitlements", "events", "stripe_inbox"}
    }


ROUTES = tenant_routes()


def test_the_sweep_finds_routes():
    assert ROUTES, "no tenant route with an object id was discovered"


@pytest.mark.parametrize(("route", "view_class"), ROUTES, ids=[route for route, _ in ROUTES])
def test_another_projects_key_gets_404_and_changes_nothing(api, tenant_a, tenant_b, route, view_class):
    kwargs = set(pattern_kwargs(route))
    missing = kwargs - set(view_class.tenant_lookup)
    assert not missing, f"{view_class.__name__} must declare tenant_lookup for {sorted(missing)}"
    factories = _factories()
    path = "/" + route
    for kwarg, model in view_class.tenant_lookup.items():
        assert model in factories, f"no factory for {model.__name__} in tests/*/factories.py"
        obj = factories[model](project=tenant_a.project)
        path = path.replace(f"<str:{kwarg}>", str(obj.pk)).replace(f"<{kwarg}>", str(obj.pk))

    api.get("/api/v1/project", key=tenant_b.key)  # B's key is warm: its last_used_at is not written again
    before = _snapshot()
    methods = [
        m for m in view_class.http_method_names if m not in {"options", "head"} and hasattr(view_class, m)
    ]
    for method in methods:
        response = api.request(method.upper(), path, key=tenant_b.key, json_body={})
        assert response.status_code == 404, (
            f"{method.upper()} {path} with another project's key: {response.status_code}"
        )
        assert response.json()["error"]["type"] == "not_found"
    assert _snapshot() == before
    if "get" in methods:
        assert api.get(path, key=tenant_a.key).status_code == 200


def pattern_kwargs(route: str) -> list[str]:
    import re

    return [name for _, name in re.findall(r"<(?:(\w+):)?(\w+)>", route)]
