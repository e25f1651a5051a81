"""One engine under the domain (issue #50): PostgreSQL schedules the stored work, Celery runs it, libraries do the
plumbing. Held here so that the machine room does not grow back:

- no scheduling in Redis: no Lua script (`eval`, `evalsha`, `register_script`, `redis.call`), but the
  entitlement change feed's (`entitlements/changes.py`: an append of a change and its position in one step, the
  feed's data, not a schedule);
- no per-host CPU slots (`fcntl`, `flock`);
- one way to write a row, the ORM: no `row_create`, `row_save`, `instance_from_row`, `select_columns`;
- no private internals of kombu or redis-py (`_create_client`, `pack_commands`, `read_response`);
- the fair claim is one module (`core/claims.py`), used by the Stripe events and the deliveries.
"""

import re

from tests.test_floor_plan import APPS, OTHER_PRODUCT_DIRS, ROOT

FORBIDDEN = {
    "a Lua script": re.compile(r"\.eval(sha)?\(|register_script\(|redis\.call\("),
    "a per-host slot": re.compile(r"\bfcntl\b|\bflock\b"),
    "a second way to write or read a row": re.compile(
        r"\b(row_create|row_save|instance_from_row|select_columns)\b"
    ),
    "a private internal of kombu or redis-py": re.compile(
        r"\b(_create_client|pack_commands|read_response)\b"
    ),
}


# Where a pattern is allowed, and why (docs/architecture.md lists what stays hand-written).
ALLOWED = {("entitlements/changes.py", "a Lua script")}


def _product_files():
    for top in (*APPS, *OTHER_PRODUCT_DIRS):
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" in path.parts or "node_modules" in path.parts:
                continue
            yield path


def test_no_machine_room_in_product_code() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {what}"
        for path in _product_files()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if not line.lstrip().startswith("#")
        for what, pattern in FORBIDDEN.items()
        if pattern.search(line) and (str(path.relative_to(ROOT)), what) not in ALLOWED
    ]
    assert found == []


def test_stripe_events_and_deliveries_share_the_fair_claim() -> None:
    users = sorted(
        str(path.relative_to(ROOT))
        for path in _product_files()
        if re.search(r"^from core\.claims import .*\bFairClaim\b", path.read_text(), re.M)
    )
    assert len(users) == 2, users
    assert {path.split("/")[0] for path in users} == {"events", APPS[APPS.index("billing") + 1]}
