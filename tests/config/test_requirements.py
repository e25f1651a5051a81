"""The production install (requirements/prod.txt, which includes base.txt) pins every library that the production
code imports, exactly.

The development venv installs more (dev.txt), so a module imported by the apps but pinned only there passes the rest
of the suite and fails in production. This reads every import statement of the production packages (function-level
ones too; not those under `if TYPE_CHECKING:`) and the apps and middleware named in the settings. Libraries that
other libraries import without declaring them (kombu → packaging) cannot be seen from here: `.ci/prod-install-check`
runs the real install for those.
"""

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

from config.settings import base

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_PACKAGES = [
    "config",
    "core",
    "projects",
    "billing",
    "entitlements",
    "events",
    "stripe_inbox",
    "stripe_gateway",
    "backoffice",
    "stripe_emulator",
]
FIRST_PARTY = {path.parent.name for path in ROOT.glob("*/__init__.py")}
REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==[A-Za-z0-9.!+_-]+$")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_lines(path: Path) -> list[tuple[Path, str]]:
    lines: list[tuple[Path, str]] = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            lines += _requirement_lines(path.parent / line[3:].strip())
        else:
            lines.append((path, line))
    return lines


PRODUCTION_REQUIREMENTS = _requirement_lines(ROOT / "requirements" / "prod.txt")


class _Imports(ast.NodeVisitor):
    def __init__(self) -> None:
        self.modules: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.modules.update(alias.name.split(".")[0] for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self.modules.add(node.module.split(".")[0])


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module → files of the production packages (and settings) that import it."""
    found: dict[str, set[str]] = {}
    files = [ROOT / "manage.py"] + [
        path for package in PRODUCTION_PACKAGES for path in (ROOT / package).rglob("*.py")
    ]
    for path in files:
        visitor = _Imports()
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        for module in visitor.modules:
            found.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    for dotted in [*base.INSTALLED_APPS, *base.MIDDLEWARE]:
        found.setdefault(dotted.split(".")[0], set()).add("config/settings/base.py")
    return {
        module: files
        for module, files in found.items()
        if module not in sys.stdlib_module_names and module not in FIRST_PARTY
    }


def test_production_requirements_are_exact_pins():
    loose = [
        f"{path.relative_to(ROOT)}: {line}"
        for path, line in PRODUCTION_REQUIREMENTS
        if not REQUIREMENT.match(line)
    ]
    assert not loose, f"production requirements must be pinned with ==: {loose}"


def test_every_library_the_production_code_imports_is_pinned_for_production():
    pinned = {_normalise(re.split(r"[\[=]", line, maxsplit=1)[0]) for _, line in PRODUCTION_REQUIREMENTS}
    providers = importlib.metadata.packages_distributions()
    imports = _third_party_imports()
    assert {"django", "celery", "rest_framework", "stripe"} <= imports.keys()  # the scan sees the imports
    missing = {
        module: f"{sorted(files)[:3]} imports it; provided by {providers.get(module) or 'no installed distribution'}"
        for module, files in imports.items()
        if not any(_normalise(dist) in pinned for dist in providers.get(module, []))
    }
    assert not missing, f"not pinned in requirements/base.txt or prod.txt: {missing}"
