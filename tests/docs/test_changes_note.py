"""Both clients carry one version in every file that states it, and docs/integration.md's "Changes for existing
integrations" names it: its newest entry is this release's, with the date and the clients' version, so an
integration that upgrades the clients reads what answers differently."""

import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "integration.md"


def _versions() -> dict[str, str]:
    """The version each file states, by file."""
    lock = json.loads((ROOT / "clients/js/package-lock.json").read_text())
    return {
        "clients/python/pyproject.toml": tomllib.loads((ROOT / "clients/python/pyproject.toml").read_text())[
            "project"
        ]["version"],
        "clients/python/tollgate_client/_version.py": re.fullmatch(
            r'__version__ = "([^"]+)"\n', (ROOT / "clients/python/tollgate_client/_version.py").read_text()
        )[1],
        "clients/js/package.json": json.loads((ROOT / "clients/js/package.json").read_text())["version"],
        "clients/js/package-lock.json": lock["version"],
        "clients/js/package-lock.json packages['']": lock["packages"][""]["version"],
        "clients/js/src/version.ts": re.fullmatch(
            r'export const VERSION = "([^"]+)";\n', (ROOT / "clients/js/src/version.ts").read_text()
        )[1],
    }


def _section(text: str, heading: str) -> str:
    """The text under a `## heading`, up to the next `## `."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_both_clients_carry_the_same_version_everywhere() -> None:
    assert _versions() == dict.fromkeys(_versions(), "0.5.9")


def test_the_guide_notes_this_releases_changes_under_the_clients_version() -> None:
    guide = GUIDE.read_text()
    notes = _section(guide, "Changes for existing integrations")
    assert guide.index("## Changes for existing integrations") < guide.index("## Keys and authentication")
    entries = re.findall(r"^### (\d{4}-\d{2}-\d{2}) — clients (\S+)$", notes, re.MULTILINE)
    assert entries[0] == ("2026-12-02", "0.5.9")
    assert entries[0][1] == _versions()["clients/js/package.json"]
    newest = notes.split("\n### ")[1]
    for change in (
        "`account_cap`",
        "`GET /products/{key}/versions`",
        "`ProductVersion.account_cap`",
        "`400 version_mismatch`",
        "`ProductDraft.account_cap`",
        "`409 correction_unsupported`",
        "`later_units`",
    ):
        assert change in newest, change
