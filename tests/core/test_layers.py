"""`core` is cross-cutting: no module of it imports a domain app, not even inside a function."""

import ast
from pathlib import Path

import core

DOMAIN_APPS = {
    "projects",
    "billing",
    "entitlements",
    "events",
    "stripe_inbox",
    "stripe_gateway",
    "backoffice",
}


def _imported(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_core_imports_no_domain_app():
    root = Path(core.__file__).parent
    offending = {
        f"{path.relative_to(root.parent)}: {module}"
        for path in sorted(root.rglob("*.py"))
        for module in _imported(path)
        if module.split(".")[0] in DOMAIN_APPS
    }
    assert offending == set()
