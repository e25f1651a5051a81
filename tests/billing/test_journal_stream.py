"""`GET /api/v1/journal/entries`: the journal as a stream, oldest posting first, by an opaque cursor. Money is made
at the emulator through the official SDK (a payment, its refund and Stripe's fee); the clock is moved with
time-machine, so the stream's trailing (`JOURNAL_SETTLE`) is proven as it is: an entry posted within it is not
served yet, and once older it is served after the cursor given before it — even one that committed after a later
entry was read, which a stream without the trailing skips for good."""

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import selectors
from billing.models import BalanceTransaction, JournalEntry, Refund
from billing.services.journal import post
from tests.billing.payment_factories import paid_credit_packs
from tests.billing.test_journal import _sync

pytestmark = pytest.mark.django_db

ENTRIES = "/api/v1/journal/entries"
SETTLE = selectors.JOURNAL_SETTLE


def _z(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _read(api, key: str, at: datetime, **query: Any) -> dict[str, Any]:
    with time_machine.travel(at, tick=False):
        response = api.get(ENTRIES, key=key, json_body=query or None)
    assert response.status_code == 200, response.content
    return response.json()


def _ids(page: dict[str, Any]) -> list[str]:
    return [entry["id"] for entry in page["data"]]


def _fee(project, source: str, amount: int, at: datetime) -> JournalEntry:
    """A Stripe fee's entry as the writer posts it, with the clock at `at` (its `created_at`)."""
    with time_machine.travel(at, tick=False):
        entry = post(
            project_id=project.pk,
            kind="fee",
            source=source,
            currency="usd",
            postings={"stripe_fees": amount, "stripe_balance": -amount},
        )
    assert entry is not None
    return entry


@pytest.fixture
def money(api, tenant_a, catalog, stripe_sdk, stripe_webhooks) -> dict[str, Any]:
    """Two credit packs paid (30.00), 5.00 of it refunded, and Stripe's fee of the charge read (1.17)."""
    paid = paid_credit_packs(api, tenant_a, stripe_sdk())
    stripe_webhooks.deliver()
    refunded = api.post(f"/api/v1/payments/{paid['id']}/refund", {"amount": 500}, key=tenant_a.key)
    assert refunded.status_code == 200, refunded.content
    stripe_webhooks.deliver()
    _sync(tenant_a.project)
    return paid


def test_each_entry_with_its_lines_in_the_chart_debit_and_credit_in_minor_units(api, tenant_a, money):
    entries = list(JournalEntry.objects.filter(project=tenant_a.project).order_by("created_at", "id"))
    refund = Refund.objects.get().stripe_refund_id
    fee = BalanceTransaction.objects.get(type="charge").stripe_balance_transaction_id
    assert [(e.kind, e.source) for e in entries] == [
        ("payment", money["id"]),
        ("refund", refund),
        ("fee", fee),
    ]

    page = _read(api, tenant_a.key, timezone.now() + SETTLE)

    def line(account: str, code: str, name: str, debit: int, credit: int) -> dict[str, Any]:
        return {"account": account, "code": code, "name": name, "debit": debit, "credit": credit}

    cash = ("stripe_balance", "1010", "Cash at Stripe")
    assert page == {
        "object": "list",
        "data": [
            {
                "id": entry.pk,
                "object": "journal_entry",
                "kind": entry.kind,
                "source": entry.source,
                "revision": 1,
                "currency": "usd",
                "effective_at": _z(entry.effective_at),
                "posted_at": _z(entry.created_at),
                "lines": lines,
            }
            for entry, lines in zip(
                entries,
                [
                    [line(*cash, 3000, 0), line("deferred_revenue", "2100", "Deferred revenue", 0, 3000)],
                    [line(*cash, 0, 500), line("refunds", "4900", "Refunds and credit notes", 500, 0)],
                    [line(*cash, 0, 117), line("stripe_fees", "6100", "Stripe fees", 117, 0)],
                ],
                strict=True,
            )
        ],
        "has_more": False,
        "next": page["next"],
    }
    assert isinstance(page["next"], str)
    # Caught up: the cursor of the end gives nothing more, and itself again to come back with.
    after = _read(api, tenant_a.key, timezone.now() + SETTLE, after=page["next"])
    assert after == {"object": "list", "data": [], "has_more": False, "next": page["next"]}


def test_pages_give_every_entry_once_in_posting_order_ties_broken_by_id(api, tenant_a, tenant_b):
    t0 = timezone.now() - timedelta(hours=1)
    # Seven entries over four instants (ties of three and two), posted out of order, and another project's.
    instants = [
        t0,
        t0 + timedelta(seconds=2),
        t0,
        t0 + timedelta(seconds=1),
        t0,
        t0 + timedelta(seconds=2),
        t0,
    ]
    made = [_fee(tenant_a.project, f"txn_{n}", 10 + n, at) for n, at in enumerate(instants)]
    _fee(tenant_b.project, "txn_b", 99, t0)
    expected = [e.pk for e in sorted(made, key=lambda e: (e.created_at, e.pk))]
    assert len({e.created_at for e in made}) == 3

    now = timezone.now()
    assert _ids(_read(api, tenant_a.key, now, limit=500)) == expected
    for limit in (1, 2, 3, 7):
        seen, pages, cursor = [], 0, None
        while True:
            page = _read(api, tenant_a.key, now, limit=limit, **({"after": cursor} if cursor else {}))
            pages += 1
            seen += _ids(page)
            assert len(page["data"]) <= limit
            cursor = page["next"]
            if not page["has_more"]:
                break
        assert seen == expected  # no entry twice, none left out
        assert pages == -(-len(expected) // limit)


def test_an_entry_posted_within_the_settle_window_is_served_once_older_after_the_cursor_given_before_it(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks
):
    """One timeline, the clock only moving on: the payment's entry at t0; at t0+10 a writer inserts an entry (its
    `created_at`) and holds its transaction open; at t0+20 another entry commits at once; readers come at t0+30,
    the late one commits at t0+40, readers come again."""
    # "The stream trails by a minute" (the schema, the docs).
    assert selectors.JOURNAL_SETTLE.total_seconds() == 60
    paid_credit_packs(api, tenant_a, stripe_sdk())
    stripe_webhooks.deliver()
    payment = JournalEntry.objects.get()
    t0 = payment.created_at
    later = _fee(tenant_a.project, "txn_later", 20, t0 + timedelta(seconds=20))

    # t0+30: everything committed so far is within the window: nothing served yet, no cursor to give.
    assert _read(api, tenant_a.key, t0 + timedelta(seconds=30)) == {
        "object": "list",
        "data": [],
        "has_more": False,
        "next": None,
    }
    # t0+40: the entry stamped t0+10 commits.
    late = _fee(tenant_a.project, "txn_late", 10, t0 + timedelta(seconds=10))

    # t0+61: the payment's entry is older than the window, the others not yet.
    first = _read(api, tenant_a.key, t0 + timedelta(seconds=61))
    assert (_ids(first), first["has_more"]) == ([payment.pk], False)
    waiting = _read(api, tenant_a.key, t0 + timedelta(seconds=69), after=first["next"])
    assert (waiting["data"], waiting["next"]) == ([], first["next"])
    # t0+75: the late entry is served after the cursor given before it; then, in its turn, the one after it.
    caught = _read(api, tenant_a.key, t0 + timedelta(seconds=75), after=first["next"])
    assert (_ids(caught), caught["has_more"]) == ([late.pk], False)
    rest = _read(api, tenant_a.key, t0 + timedelta(seconds=90), after=caught["next"])
    assert (_ids(rest), rest["has_more"]) == ([later.pk], False)
    assert _ids(_read(api, tenant_a.key, t0 + timedelta(seconds=90))) == [payment.pk, late.pk, later.pk]


def test_without_the_settle_window_the_cursor_would_skip_an_entry_committed_late(api, tenant_a, monkeypatch):
    """What the rule is for: a reader that is not trailing passes the late entry's place before it commits."""
    monkeypatch.setattr(selectors, "JOURNAL_SETTLE", timedelta(0))
    t0 = timezone.now() - timedelta(hours=1)
    early = _fee(tenant_a.project, "txn_early", 5, t0)
    later = _fee(tenant_a.project, "txn_later", 20, t0 + timedelta(seconds=20))
    first = _read(api, tenant_a.key, t0 + timedelta(seconds=30))
    assert _ids(first) == [early.pk, later.pk]
    late = _fee(tenant_a.project, "txn_late", 10, t0 + timedelta(seconds=10))

    assert _ids(_read(api, tenant_a.key, t0 + timedelta(hours=1), after=first["next"])) == []
    assert _ids(_read(api, tenant_a.key, t0 + timedelta(hours=1))) == [early.pk, late.pk, later.pk]


def test_filters_by_kind_and_effective_time_keep_the_order(api, tenant_a, money):
    now = timezone.now() + SETTLE
    refund = JournalEntry.objects.get(kind="refund")
    assert _ids(_read(api, tenant_a.key, now, kind="refund")) == [refund.pk]
    assert _read(api, tenant_a.key, now, kind="dispute")["data"] == []

    entries = list(JournalEntry.objects.order_by("created_at", "id"))
    effective = sorted(e.effective_at for e in entries)
    window = {"effective_from": _z(effective[1]), "effective_to": _z(effective[2])}
    assert _ids(_read(api, tenant_a.key, now, **window)) == [
        e.pk for e in entries if effective[1] <= e.effective_at < effective[2]
    ]
    assert _ids(_read(api, tenant_a.key, now, effective_to=_z(effective[0]))) == []
    # A date is its midnight UTC; an offset is honoured.
    day = effective[0].date()
    assert len(_read(api, tenant_a.key, now, effective_from=day.isoformat())["data"]) == 3
    assert _read(api, tenant_a.key, now, effective_to=day.isoformat())["data"] == []
    assert _read(api, tenant_a.key, now, effective_from="9999-12-31T23:59:59-23:00")["data"] == []


@pytest.mark.parametrize(
    ("query", "code", "param"),
    [
        ({"limit": 0}, "invalid_limit", "limit"),
        ({"limit": 501}, "invalid_limit", "limit"),
        ({"limit": "ten"}, "invalid_limit", "limit"),
        ({"after": "je_123"}, "invalid_cursor", "after"),
        ({"after": "bm90IGEgY3Vyc29y"}, "invalid_cursor", "after"),
        ({"kind": "salary"}, "invalid_parameter", "kind"),
        ({"effective_from": "yesterday"}, "invalid_parameter", "effective_from"),
        ({"starting_after": "je_123"}, "unknown_parameter", "starting_after"),
    ],
)
def test_refusals(api, tenant_a, query, code, param):
    response = api.get(ENTRIES, key=tenant_a.key, json_body=query)
    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (code, param)


def test_another_projects_key_sees_only_its_own_entries(
    api, tenant_a, tenant_b, catalog, catalog_b, stripe_sdk, stripe_webhooks
):
    paid_credit_packs(api, tenant_a, stripe_sdk())
    theirs = paid_credit_packs(api, tenant_b, stripe_sdk())
    stripe_webhooks.deliver()
    now = timezone.now() + SETTLE
    mine = _read(api, tenant_a.key, now)
    assert [e["kind"] for e in mine["data"]] == ["payment"]

    seen = _read(api, tenant_b.key, now)
    assert [(e["kind"], e["source"]) for e in seen["data"]] == [("payment", theirs["id"])]
    assert not set(_ids(seen)) & set(_ids(mine))
    # A's cursor is only a place in time to B's key: from there on B's own entries, never A's.
    assert set(_ids(_read(api, tenant_b.key, now, after=mine["next"]))) <= set(_ids(seen))
    assert api.get(ENTRIES).status_code == 401


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's plan; SQLite has no such index bound"
)
def test_a_page_after_a_cursor_is_read_from_the_posting_index_bounded_by_it(api, tenant_a):
    t0 = timezone.now() - timedelta(hours=1)
    for n in range(40):
        _fee(tenant_a.project, f"txn_{n}", 1 + n, t0 + timedelta(seconds=n // 2))
    now = timezone.now()
    cursor = _read(api, tenant_a.key, now, limit=30)["next"]
    with CaptureQueriesContext(connection) as queries:
        page = _read(api, tenant_a.key, now, limit=5, after=cursor)
    assert len(page["data"]) == 5
    [listing] = [q["sql"] for q in queries.captured_queries if "LIMIT 6" in q["sql"]]
    with transaction.atomic(), connection.cursor() as explain:
        # A 40-row table would be read whole and sorted otherwise: ask for the plan a large journal gets.
        explain.execute("SET LOCAL enable_seqscan = off")
        explain.execute("SET LOCAL enable_sort = off")
        explain.execute("EXPLAIN " + listing)
        plan = "\n".join(row[0] for row in explain.fetchall())
    assert "Index Scan using journal_entry_posted" in plan, plan
    index_cond = next(line for line in plan.splitlines() if "Index Cond" in line)
    # The cursor bounds the scan (a row comparison in the index condition), as the settle window does; nothing is
    # filtered out after reading it, and nothing is sorted.
    assert re.search(r"ROW\(created_at, \(?id\)?(::text)?\) > ROW\(", index_cond), plan
    assert "created_at <= " in index_cond, plan
    assert "Filter:" not in plan, plan
    assert "Sort" not in plan, plan
