"""The direction of dependencies between the apps (docs/architecture.md, "Layers"): a module imports only from its
own layer or the layers below it, at the top of the file or inside a function alike.

From the top: the interfaces (API views, admin, URLs, management commands, app configs, /metrics collectors,
the dashboard, the demo's pages, the portal and the OpenAPI hook of the Stripe intake); the Stripe inbox
(`stripe_inbox.services`, `.tasks`); billing (with Stripe's event handlers, `billing.handlers`); project settings
(`projects.services`); entitlements; tenant events (`events.services`, `.tasks`, `.representations`,
`.selectors`); the data (models, the tenancy of `projects`, the Stripe gateway); `core`. An app's Celery tasks sit
in its layer: its services queue them, they call its services. So Stripe's events flow stripe_inbox → billing →
entitlements → events, and nothing below calls back up.

A module that fits no layer fails the test: place it (below) when you add it.
"""

import ast
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "core",
    "projects",
    "billing",
    "entitlements",
    "events",
    "stripe_inbox",
    "stripe_gateway",
    "backoffice",
)

# (layer, patterns), top first; a module takes the first layer one of whose patterns matches its dotted name.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "interfaces",
        (
            "*.apis",
            "*.apis.*",
            "*_apis",
            "*.urls",
            "*_urls",
            "*.urls.*",
            "*.admin",
            "*.admin.*",
            "*.admin_*",
            "*.management",
            "*.management.*",
            "*.apps",
            "*.prometheus",
            "stripe_inbox.schema",
            "backoffice",
            "backoffice.*",
            "billing.dashboard",
            "billing.metrics",
            "billing.portal",
            "billing.demo",
        ),
    ),
    ("stripe inbound", ("stripe_inbox", "stripe_inbox.*")),
    ("billing", ("billing", "billing.*")),
    ("project settings", ("projects.services",)),
    ("entitlements", ("entitlements", "entitlements.*")),
    (
        "events outbound",
        ("events", "events.*"),
    ),
    (
        "data",
        (
            "billing.models",
            "billing.gateway",
            "entitlements.models",
            "events.models",
            "events.signing",
            "stripe_inbox.models",
            "stripe_gateway",
            "stripe_gateway.*",
            "projects",
            "projects.*",
        ),
    ),
    ("core", ("core", "core.*")),
]
# Data modules that billing's own patterns would take first.
DATA_FIRST = (
    "billing.models",
    "billing.gateway",
    "entitlements.models",
    "events.models",
    "events.signing",
    "stripe_inbox.models",
)


def layer_of(module: str) -> int | None:
    if module in DATA_FIRST:
        return next(i for i, (name, _) in enumerate(LAYERS) if name == "data")
    for index, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch(module, pattern) for pattern in patterns):
            return index
    return None


def _modules() -> dict[str, Path]:
    found = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts or "tests" in parts:
                continue
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The app modules `path` imports (`from billing import payments` names the module billing.payments)."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] not in APPS:
                continue
            while name not in modules and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in modules:
                imported.add(name)
    return imported


def test_every_app_module_has_a_layer():
    assert sorted(m for m in _modules() if layer_of(m) is None) == []


def test_no_module_imports_from_a_layer_above_its_own():
    modules = _modules()
    upward = set()
    for module, path in modules.items():
        own = layer_of(module)
        for target in _imports(path, modules):
            theirs = layer_of(target)
            if own is not None and theirs is not None and theirs < own:
                upward.add(f"{module} ({LAYERS[own][0]}) imports {target} ({LAYERS[theirs][0]})")
    assert sorted(upward) == []


def test_the_contract_catches_an_upward_import(tmp_path):
    """The check itself: entitlements calling into billing's services would be refused."""
    fake = tmp_path / "services.py"
    fake.write_text("from billing.subscriptions import subscription_apply\n")
    modules = {**_modules(), "entitlements.fake": fake}
    own, target = layer_of("entitlements.fake"), layer_of("billing.subscriptions")
    assert (own, target) == (
        [name for name, _ in LAYERS].index("entitlements"),
        [name for name, _ in LAYERS].index("billing"),
    )
    assert "billing.subscriptions" in _imports(fake, modules)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, set())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_spans_two_apps():
    """What cycles remain are an app's services and its Celery tasks (a service queues the task, the task calls
    the service), inside one app and one layer."""
    modules = _modules()
    graph = {module: _imports(path, modules) - {module} for module, path in modules.items()}
    spanning = [cycle for cycle in _cycles(graph) if len({m.split(".")[0] for m in cycle}) > 1]
    assert spanning == []
    assert _cycles({"a.x": {"b.y"}, "b.y": {"a.x"}, "c.z": set()}) == [["a.x", "b.y"]]
