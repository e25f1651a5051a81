"""Entitlements sits below billing: it imports nothing from billing (function-local imports included) and none of
its models has a foreign key into billing. Billing hands it facts (`entitlements.services.sources`).

Customer, Product and Price, and the catalog's modules, still live in billing while the domain-apps restructuring
moves them below entitlements (to `customers` and `catalog`): they are the only billing names allowed here, and
this allowance goes when they move (the general floor-plan test takes this one over).
"""

import ast
from pathlib import Path

from django.apps import apps

ROOT = Path(__file__).resolve().parent.parent
# Billing's names that move below entitlements (customers/, catalog/), so entitlements may use them meanwhile.
MOVING_MODELS = {"Customer", "TestClock", "Product", "Price"}
MOVING_MODULES = ("billing.catalog",)


def _billing_imports(path: Path) -> list[str]:
    """`module:line name` of every import of billing in the file that is not one of the moving names."""
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                billing = alias.name == "billing" or alias.name.startswith("billing.")
                if billing and not alias.name.startswith(MOVING_MODULES):
                    found.append(f"{name}:{node.lineno} import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = node.module
            if module != "billing" and not module.startswith("billing."):
                continue
            if module.startswith(MOVING_MODULES):
                continue
            names = {alias.name for alias in node.names}
            if module == "billing.models" and names <= MOVING_MODELS:
                continue
            found.append(f"{name}:{node.lineno} from {module} import {', '.join(sorted(names))}")
    return found


def test_entitlements_import_nothing_from_billing():
    offenders = [
        line
        for path in sorted((ROOT / "entitlements").rglob("*.py"))
        if "migrations" not in path.parts
        for line in _billing_imports(path)
    ]
    assert offenders == []


def test_the_walk_sees_function_local_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n    from billing.models import Customer, Payment\n    import billing.gateway\n"
    )
    assert len(_billing_imports(sample)) == 2


def test_no_entitlements_model_points_a_foreign_key_into_billing():
    moving = {f"billing.{name}".lower() for name in MOVING_MODELS}
    offenders = [
        f"{model.__name__}.{field.name} -> {field.related_model._meta.label}"
        for model in apps.get_app_config("entitlements").get_models()
        for field in model._meta.get_fields()
        if field.is_relation
        and field.concrete
        and field.related_model is not None
        and field.related_model._meta.app_label == "billing"
        and field.related_model._meta.label_lower not in moving
    ]
    assert offenders == []
