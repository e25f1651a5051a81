"""Every `from x import y` of the repository's own packages resolves, in the modules mypy does not read (tests,
benchmarks) as in the product: a module moved between apps leaves no import behind that only fails when the one
test or benchmark that holds it runs (function-local imports included)."""

import ast
import importlib
from pathlib import Path

from config.settings.base import TOLLGATE_APPS

ROOT = Path(__file__).resolve().parent.parent
OURS = {*TOLLGATE_APPS, "config", "stripe_emulator", "tests", "bench"}


def _unresolved() -> list[str]:
    found = []
    for top in sorted(OURS):
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
                    continue
                if node.module.split(".")[0] not in OURS:
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                try:
                    module = importlib.import_module(node.module)
                except ImportError as exc:
                    found.append(f"{where}: {node.module} ({exc})")
                    continue
                for alias in node.names:
                    if alias.name == "*" or hasattr(module, alias.name):
                        continue
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        found.append(f"{where}: {node.module} has no {alias.name}")
    return found


def test_every_import_of_our_packages_resolves():
    assert _unresolved() == []
