"""Views are thin (docs/architecture.md, "Layers"): a view parses its input, calls one service or selector, and
renders. No function in a view module builds a query: no `Model.objects…` and no queryset method such as
`.filter(` — those live in the app's selectors."""

import ast
from pathlib import Path

from config.settings.base import TOLLGATE_APPS

ROOT = Path(__file__).resolve().parent.parent
APPS = tuple(TOLLGATE_APPS)
VIEW_PATTERNS = ("apis.py", "*/apis.py", "apis/*.py", "*_apis.py", "*/*_apis.py")
QUERY_METHODS = {
    "filter",
    "exclude",
    "select_related",
    "prefetch_related",
    "annotate",
    "aggregate",
    "order_by",
    "values",
    "values_list",
    "exists",
}


def view_modules() -> list[Path]:
    found = {path for app in APPS for pattern in VIEW_PATTERNS for path in (ROOT / app).glob(pattern)}
    return sorted(path for path in found if path.name != "__init__.py" or path.stat().st_size)


def _chain(node: ast.expr) -> list[str]:
    """The attribute names along `a.b(...).c.d(...)`, outermost last."""
    names: list[str] = []
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return names[::-1]


def queries_in(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        chain = _chain(node.func)
        if "objects" in chain or node.func.attr in QUERY_METHODS:
            found.append(f"{path.relative_to(root)}:{node.lineno}: .{'.'.join(chain)}(")
    return found


def test_the_view_modules_are_found():
    names = {str(path.relative_to(ROOT)) for path in view_modules()}
    assert {
        "billing/apis/payments.py",
        "billing/apis/subscriptions.py",
        "catalog/apis/catalog.py",
        "customers/apis/customers.py",
        "backoffice/apis/metrics.py",
        "entitlements/apis/grants.py",
        "events/apis/endpoints.py",
        "events/apis/events.py",
        "webhooks/apis/intake.py",
        "projects/apis/projects.py",
    } <= names


def test_no_view_builds_a_query():
    assert [hit for path in view_modules() for hit in queries_in(path)] == []


def test_the_check_catches_a_query(tmp_path):
    fake = tmp_path / "apis.py"
    fake.write_text(
        "def get(request):\n"
        "    a = Payment.objects.get(pk=1)\n"
        "    b = selectors.payment_list(project=p).filter(status='paid')\n"
        "    c = request.query_params.get('x')\n"
        "    return a, b, c\n"
    )
    hits = [hit.split(": ", 1)[1] for hit in queries_in(fake, root=tmp_path)]
    assert hits == [".objects.get(", ".payment_list.filter("]
