"""Each type of tenant event is announced from one place: the module of the use case that decides it (the only
module whose `event_record(` or `events_record(` calls can record it). Two modules recording one type would make the order and the
content of what tenants receive depend on which path ran."""

import ast
from pathlib import Path

from events.types import EVENT_TYPES

ROOT = Path(__file__).resolve().parent.parent.parent
NOT_PRODUCT = {"tests", "stripe_emulator", "clients", "bench", "config", "docs", "templates", "requirements"}


def _product_modules() -> list[Path]:
    apps = [
        path.parent
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in NOT_PRODUCT and not path.parent.name.startswith(".")
    ]
    return [
        path
        for app in apps
        for path in sorted(app.rglob("*.py"))
        if "migrations" not in path.parts and "tests" not in path.parts
    ]


def _records(tree: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Call)
        and (getattr(node.func, "id", None) or getattr(node.func, "attr", None))
        in ("event_record", "events_record")
        for node in ast.walk(tree)
    )


def _announcers() -> dict[str, set[str]]:
    """Event type → the modules that call `event_record(` (or `events_record(`) and name the type."""
    found: dict[str, set[str]] = {}
    for path in _product_modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        if not _records(tree):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in EVENT_TYPES:
                found.setdefault(node.value, set()).add(str(path.relative_to(ROOT)))
    return found


def test_each_event_type_is_recorded_from_one_module():
    announcers = _announcers()
    assert {t: sorted(m) for t, m in announcers.items() if len(m) != 1} == {}
    assert sorted(set(EVENT_TYPES) - announcers.keys()) == []


def test_the_walk_sees_the_recorders():
    """The walk itself: it finds the modules known to record (a renamed function would empty it)."""
    modules = {module for found in _announcers().values() for module in found}
    assert "events/services/deliver.py" in modules
    assert len(modules) >= 6
