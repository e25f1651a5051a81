"""Editing a draft invoice's lines through the Python client, on the live server with the Stripe emulator: a
draft made at Stripe (not finalized) and mirrored, given an invoice item and a credit line, one changed and one
removed, the invoice's total and lines exact after each (at Stripe too); a write whose answer was lost retried
with its idempotency key and applied once; a subscription's own line refused (it follows its subscription), as
are an unknown line and any edit once the invoice is no longer a draft."""

import pytest
from tollgate_client import ConflictError, InvalidRequestError, NotFoundError, Tollgate
from tollgate_client.types import Invoice

from core.models import AuditLogEntry
from tests.clients.test_journey import _define_catalog, _subscribe_and_pay

pytestmark = pytest.mark.django_db(transaction=True)


def _draft_invoice(tollgate: Tollgate, stripe_emulator, stripe_webhooks, stripe_sdk) -> Invoice:
    """An invoice of no lines, left a draft at Stripe (send_invoice, not finalized), made for a subscriber."""
    _define_catalog(tollgate)
    _subscribe_and_pay(tollgate, stripe_emulator, stripe_webhooks)
    stripe_customer = tollgate.customers.retrieve("user-42").stripe_customer_id
    made = stripe_sdk().v1.invoices.create(
        {"customer": stripe_customer, "collection_method": "send_invoice", "days_until_due": 30}
    )
    stripe_webhooks.deliver()
    (invoice,) = tollgate.invoices.list(customer="user-42", status="draft").data
    assert (invoice.stripe_invoice_id, invoice.status, invoice.total, invoice.lines) == (
        made.id,
        "draft",
        0,
        [],
    )
    return invoice


def _lines(invoice: Invoice) -> list[tuple[str, int, str | None]]:
    return sorted((line.description, line.amount, line.type) for line in invoice.lines)


def _line_id(invoice: Invoice, description: str) -> str:
    (line_id,) = [line.id for line in invoice.lines if line.description == description]
    assert line_id is not None
    assert line_id.startswith("il_")
    return line_id


def _audits() -> list[tuple[str, str, dict, dict]]:
    """The line edits audited, oldest first: (action, reason, before, after without the operation's identity)."""
    entries = AuditLogEntry.objects.filter(action__startswith="invoice.line_").order_by("created_at")
    return [
        (entry.action, entry.reason, entry.before, {k: v for k, v in entry.after.items() if k != "operation"})
        for entry in entries
    ]


def _at_stripe(stripe_sdk, invoice: Invoice) -> tuple[str, int, list[tuple[str, int]]]:
    """The invoice as Stripe has it: its status, total and lines (description, amount)."""
    held = stripe_sdk().v1.invoices.retrieve(invoice.stripe_invoice_id)
    lines = sorted((str(line.description), int(line.amount)) for line in held.lines.data)
    return str(held.status), int(held.total), lines


def test_a_draft_invoices_lines_added_changed_and_removed(
    tollgate, stripe_emulator, stripe_webhooks, stripe_sdk
):
    draft = _draft_invoice(tollgate, stripe_emulator, stripe_webhooks, stripe_sdk)

    added = tollgate.invoices.add_line(
        draft.id, amount=2500, description="Onboarding session", reason="agreed on the call"
    )

    assert isinstance(added, Invoice)
    assert (added.id, added.status, added.subtotal, added.total, added.amount_due) == (
        draft.id,
        "draft",
        2500,
        2500,
        2500,
    )
    assert _lines(added) == [("Onboarding session", 2500, "invoice_item")]
    (line,) = added.lines
    assert (line.currency, line.quantity, line.proration, line.stripe_price_id) == ("usd", 1, False, None)

    credited = tollgate.invoices.add_line(draft.id, amount=-500, description="Loyalty credit")
    assert (credited.subtotal, credited.total) == (2000, 2000)
    assert _lines(credited) == [
        ("Loyalty credit", -500, "invoice_item"),
        ("Onboarding session", 2500, "invoice_item"),
    ]
    onboarding = _line_id(credited, "Onboarding session")
    assert onboarding == line.id

    changed = tollgate.invoices.update_line(draft.id, onboarding, amount=3000, reason="two hours")
    assert changed.total == 2500
    assert _lines(changed) == [
        ("Loyalty credit", -500, "invoice_item"),
        ("Onboarding session", 3000, "invoice_item"),
    ]
    renamed = tollgate.invoices.update_line(draft.id, onboarding, description="Onboarding (2 h)")
    assert renamed.total == 2500
    assert _lines(renamed) == [
        ("Loyalty credit", -500, "invoice_item"),
        ("Onboarding (2 h)", 3000, "invoice_item"),
    ]
    assert _line_id(renamed, "Onboarding (2 h)") == onboarding  # changed in place, its id kept

    removed = tollgate.invoices.remove_line(
        draft.id, _line_id(renamed, "Loyalty credit"), reason="not this month"
    )
    assert (removed.status, removed.subtotal, removed.total, removed.amount_due) == (
        "draft",
        3000,
        3000,
        3000,
    )
    assert _lines(removed) == [("Onboarding (2 h)", 3000, "invoice_item")]
    assert _at_stripe(stripe_sdk, draft) == ("draft", 3000, [("Onboarding (2 h)", 3000)])
    # The mirror is the answer, and stays it once Stripe's events about the edits arrive.
    assert tollgate.invoices.retrieve(draft.id).raw == removed.raw
    stripe_webhooks.deliver()
    assert tollgate.invoices.retrieve(draft.id).raw == removed.raw

    credit_line = _line_id(renamed, "Loyalty credit")
    assert _audits() == [
        (
            "invoice.line_add_requested",
            "agreed on the call",
            {"status": "draft", "total": 0},
            {"amount": 2500, "description": "Onboarding session"},
        ),
        (
            "invoice.line_add_requested",
            "",
            {"status": "draft", "total": 2500},
            {"amount": -500, "description": "Loyalty credit"},
        ),
        (
            "invoice.line_update_requested",
            "two hours",
            {"line": onboarding, "amount": 2500, "description": "Onboarding session"},
            {"line": onboarding, "amount": 3000},
        ),
        (
            "invoice.line_update_requested",
            "",
            {"line": onboarding, "amount": 3000, "description": "Onboarding session"},
            {"line": onboarding, "description": "Onboarding (2 h)"},
        ),
        (
            "invoice.line_remove_requested",
            "not this month",
            {"line": credit_line, "amount": -500, "description": "Loyalty credit"},
            {"line": credit_line},
        ),
    ]

    # What cannot be done: no amount, a change of nothing, an unknown line.
    with pytest.raises(InvalidRequestError) as zero:
        tollgate.invoices.add_line(draft.id, amount=0, description="Nothing")
    assert zero.value.status == 400
    with pytest.raises(InvalidRequestError) as nothing:
        tollgate.invoices.update_line(draft.id, onboarding, reason="no change")
    assert nothing.value.status == 400
    with pytest.raises(NotFoundError) as unknown:
        tollgate.invoices.update_line(draft.id, "il_missing", amount=100)
    assert (unknown.value.status, unknown.value.code) == (404, "invoice_line_not_found")
    with pytest.raises(NotFoundError) as unknown_removed:
        tollgate.invoices.remove_line(draft.id, "il_missing")
    assert (unknown_removed.value.status, unknown_removed.value.code) == (404, "invoice_line_not_found")

    # Finalized at Stripe, it is no longer a draft: every edit is refused, and Stripe's invoice is as it was.
    stripe_sdk().v1.invoices.finalize_invoice(draft.stripe_invoice_id)
    refusals = (
        lambda: tollgate.invoices.add_line(draft.id, amount=100, description="Late"),
        lambda: tollgate.invoices.update_line(draft.id, onboarding, amount=100),
        lambda: tollgate.invoices.remove_line(draft.id, onboarding),
    )
    for refused in refusals:
        with pytest.raises(ConflictError) as caught:
            refused()
        assert (caught.value.status, caught.value.type, caught.value.code) == (
            409,
            "conflict",
            "invoice_not_draft",
        )
    assert _at_stripe(stripe_sdk, draft) == ("open", 3000, [("Onboarding (2 h)", 3000)])
    assert len(_audits()) == 5  # nothing refused was recorded
    stripe_webhooks.deliver()
    final = tollgate.invoices.retrieve(draft.id)
    assert (final.status, final.total, _lines(final)) == (
        "open",
        3000,
        [("Onboarding (2 h)", 3000, "invoice_item")],
    )


def test_a_lost_answer_is_replayed_not_repeated(
    tollgate, via_proxy, proxy, stripe_emulator, stripe_webhooks, stripe_sdk
):
    draft = _draft_invoice(tollgate, stripe_emulator, stripe_webhooks, stripe_sdk)

    proxy.fail("POST", 503, forward=True)  # Tollgate adds the line; its answer is lost
    added = via_proxy.invoices.add_line(
        draft.id, amount=1200, description="Setup fee", idempotency_key="setup-42"
    )
    again = tollgate.invoices.add_line(
        draft.id, amount=1200, description="Setup fee", idempotency_key="setup-42"
    )

    posts = proxy.requests("POST")
    assert [(seen.status, seen.idempotency_key) for seen in posts] == [(503, "setup-42"), (201, "setup-42")]
    assert posts[1].replayed
    assert (added.total, _lines(added)) == (1200, [("Setup fee", 1200, "invoice_item")])
    assert again.raw == added.raw  # the first answer, replayed
    assert [entry[0] for entry in _audits()] == ["invoice.line_add_requested"]  # recorded once
    assert _at_stripe(stripe_sdk, draft) == ("draft", 1200, [("Setup fee", 1200)])

    proxy.fail("POST", 503, forward=True)
    changed = via_proxy.invoices.update_line(draft.id, _line_id(added, "Setup fee"), amount=1500)
    assert (changed.total, _lines(changed)) == (1500, [("Setup fee", 1500, "invoice_item")])

    proxy.fail("DELETE", drop=True)  # Tollgate removes the line; the connection drops before the answer
    removed = via_proxy.invoices.remove_line(draft.id, _line_id(changed, "Setup fee"), reason="waived")
    deletes = proxy.requests("DELETE")
    assert len(deletes) == 2
    assert deletes[0].idempotency_key == deletes[1].idempotency_key
    assert (removed.total, removed.lines) == (0, [])
    assert _at_stripe(stripe_sdk, draft) == ("draft", 0, [])
    assert [entry[0] for entry in _audits()] == [
        "invoice.line_add_requested",
        "invoice.line_update_requested",
        "invoice.line_remove_requested",
    ]
    # The account goes on: a removed line's invoice item is gone at Stripe, and a new subscription (which pulls in
    # the customer's pending invoice items) is made past it.
    _subscribe_and_pay(tollgate, stripe_emulator, stripe_webhooks, customer="user-43")
    (subscription,) = tollgate.subscriptions.list(customer="user-43").data
    assert subscription.status == "active"


def test_a_subscriptions_line_follows_its_subscription(
    tollgate, stripe_emulator, stripe_webhooks, stripe_sdk
):
    """A renewal left a draft (the subscription's collection paused, `keep_as_draft`): its own line cannot be
    changed or removed, but an invoice item can be added beside it."""
    _define_catalog(tollgate)
    _subscribe_and_pay(tollgate, stripe_emulator, stripe_webhooks)
    (subscription,) = tollgate.subscriptions.list(customer="user-42").data
    sdk = stripe_sdk()
    sdk.v1.subscriptions.update(
        subscription.stripe_subscription_id, {"pause_collection": {"behavior": "keep_as_draft"}}
    )
    stripe_emulator.advance(32 * 86_400)
    stripe_webhooks.deliver()
    (renewal,) = tollgate.invoices.list(customer="user-42", status="draft").data
    assert (renewal.subscription, renewal.total, _lines(renewal)) == (
        subscription.id,
        900,
        [(renewal.lines[0].description, 900, "subscription_item")],
    )
    plan_line = renewal.lines[0].id
    assert plan_line is not None
    assert plan_line.startswith("il_")

    for refused in (
        lambda: tollgate.invoices.update_line(renewal.id, plan_line, amount=100),
        lambda: tollgate.invoices.update_line(renewal.id, plan_line, description="Starter, renamed"),
        lambda: tollgate.invoices.remove_line(renewal.id, plan_line),
    ):
        with pytest.raises(ConflictError) as caught:
            refused()
        assert (caught.value.status, caught.value.code) == (409, "invoice_line_not_editable")

    added = tollgate.invoices.add_line(renewal.id, amount=-900, description="One month free")
    assert (added.subtotal, added.total, added.amount_due) == (0, 0, 0)
    assert sorted((line.amount, line.type) for line in added.lines) == [
        (-900, "invoice_item"),
        (900, "subscription_item"),
    ]
    held = sdk.v1.invoices.retrieve(renewal.stripe_invoice_id)
    assert (held.status, held.total, len(held.lines.data)) == ("draft", 0, 2)
