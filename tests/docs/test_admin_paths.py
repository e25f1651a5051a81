"""Every admin page the docs name ("Admin → Billing → Reconciliation runs") is where they say: the section is an
app of the admin index as a superuser sees it, and the page one of that app's models, by their names there."""

import re
from pathlib import Path

from django.contrib.auth.models import User
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _named_paths() -> list[tuple[str, str]]:
    """(file, the text after "Admin →") for every mention, its line breaks and bold marks undone."""
    found = []
    for path in DOCS:
        text = re.sub(r"\s+", " ", path.read_text().replace("**", ""))
        found += [(path.name, m.group(1)) for m in re.finditer(r"Admin → (.{0,120})", text)]
    return found


def _admin_index() -> dict[str, list[str]]:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    apps = client.get("/admin/").context["app_list"]
    return {str(app["name"]): [str(model["name"]) for model in app["models"]] for app in apps}


def _starts_with_one_of(text: str, names: list[str]) -> str | None:
    matches = [name for name in names if text == name or re.match(re.escape(name) + r"(?!\w)", text)]
    return max(matches, key=len, default=None)


def test_the_docs_name_admin_pages_that_exist(db):
    index = _admin_index()
    mentions = _named_paths()
    assert len(mentions) >= 10
    wrong = []
    for file, rest in mentions:
        app = _starts_with_one_of(rest, list(index))
        if app is None:
            wrong.append((file, rest[:60], "no such section"))
            continue
        after = rest[len(app) :]
        if after.startswith(" → ") and _starts_with_one_of(after[3:], index[app]) is None:
            wrong.append((file, rest[:60], f"no such page in {app}: {index[app]}"))
    assert wrong == []
