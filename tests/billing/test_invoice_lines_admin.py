"""A draft invoice's lines edited in the back office, at Stripe: finance adds a line (a credit too), changes a
line's amount and removes a line, each audited with the operator and the reason; the same page submitted twice is
one edit at Stripe, audited once; support cannot; an invoice finalized meanwhile is refused, the operator is told
and nothing changes."""

import re

from django.contrib.auth.models import User
from django.test import Client

from billing.models import Invoice
from core.models import AuditLogEntry
from tests.billing.test_invoice_corrections import _operator
from tests.billing.test_invoice_lines import _add, _at_stripe, _draft, _mirror

INVOICES = "/admin/billing/invoice/"


def _form(client: Client, action: str, invoices: list[Invoice]) -> tuple[str, str]:
    """The action's form page, as the operator sees it, and the operation token drawn for it."""
    shown = client.post(INVOICES, {"action": action, "_selected_action": [i.pk for i in invoices]})
    assert shown.status_code == 200, shown.content
    page = shown.content.decode()
    token = re.search(r'name="operation" value="([A-Za-z0-9]{24})"', page)
    assert token is not None
    return page, token.group(1)


def _apply(client: Client, action: str, invoices: list[Invoice], capture, **fields):
    with capture(execute=True):
        return client.post(
            INVOICES,
            {"action": action, "_selected_action": [i.pk for i in invoices], "apply": "1", **fields},
        )


def _told(client: Client, response) -> str:
    """The messages the operator reads on the list the action returned to."""
    assert response.status_code == 302, response.content
    return client.get(response["Location"]).content.decode()


def _line_id(invoice: Invoice, description: str) -> str:
    held = Invoice.objects.get(pk=invoice.pk)
    return next(line["stripe_line_id"] for line in held.lines if line["description"] == description)


def test_finance_adds_a_line_with_a_reason_and_the_same_page_twice_adds_one(
    api,
    tenant_a,
    catalog,
    stripe_emulator,
    stripe_webhooks,
    stripe_sdk,
    django_capture_on_commit_callbacks,
):
    invoice = _draft(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)
    client = _operator("finance")
    page, token = _form(client, "add_line", [invoice])
    assert all(f'name="{name}"' in page for name in ("amount", "description", "reason"))
    # Nothing, or not money: the form again, nothing sent.
    for amount, error in (("0.00", "An amount of nothing"), ("five", "&#x27;five&#x27; is not an amount")):
        refused = _apply(
            client, "add_line", [invoice], django_capture_on_commit_callbacks, amount=amount,
            description="Onboarding", reason="agreed", operation=token,
        )  # fmt: skip
        assert (refused.status_code, error in refused.content.decode()) == (200, True)
    fields = {
        "amount": "25.00",
        "description": "Onboarding",
        "reason": "agreed on the call",
        "operation": token,
    }

    done = _apply(client, "add_line", [invoice], django_capture_on_commit_callbacks, **fields)
    assert f"{invoice}: line added; total $40.00" in _told(client, done)
    # The same page submitted again (a double click): the same operation, continued.
    again = _apply(client, "add_line", [invoice], django_capture_on_commit_callbacks, **fields)

    assert f"{invoice}: line added; total $40.00" in _told(client, again)
    assert _at_stripe(stripe_sdk, invoice) == ("draft", 4000, [("Onboarding", 2500), ("Setup", 1500)])
    assert len(stripe_sdk().v1.invoice_items.list({"invoice": invoice.stripe_invoice_id}).data) == 2
    held = Invoice.objects.get(pk=invoice.pk)
    assert (held.status, held.total, held.amount_due) == ("draft", 4000, 4000)
    assert sorted((line["description"], line["amount"], line["type"]) for line in held.lines) == [
        ("Onboarding", 2500, "invoice_item"),
        ("Setup", 1500, "invoice_item"),
    ]
    audit = AuditLogEntry.objects.get(action="invoice.line_add_requested")
    operator = User.objects.get(username="finance-op")
    assert (audit.target_id, audit.actor_type, audit.actor_id, audit.reason) == (
        invoice.pk,
        "user",
        str(operator.pk),
        "agreed on the call",
    )
    assert audit.before == {"status": "draft", "total": 1500}
    assert (audit.after["amount"], audit.after["description"]) == (2500, "Onboarding")
    assert re.fullmatch(r"[0-9a-f]{32}", audit.after["operation"])

    # A credit (a negative amount), on a page of its own: a second line, audited on its own.
    _page, credit_token = _form(client, "add_line", [invoice])
    credit = {"amount": "-5.00", "description": "Goodwill", "reason": "late start", "operation": credit_token}
    credited = _apply(client, "add_line", [invoice], django_capture_on_commit_callbacks, **credit)

    assert f"{invoice}: line added; total $35.00" in _told(client, credited)
    assert _at_stripe(stripe_sdk, invoice) == (
        "draft",
        3500,
        [("Goodwill", -500), ("Onboarding", 2500), ("Setup", 1500)],
    )
    assert _mirror(invoice) == _at_stripe(stripe_sdk, invoice)
    assert AuditLogEntry.objects.filter(action="invoice.line_add_requested").count() == 2
    stripe_webhooks.deliver()  # Stripe's events of the edits change nothing more
    assert _mirror(invoice) == ("draft", 3500, [("Goodwill", -500), ("Onboarding", 2500), ("Setup", 1500)])


def test_finance_changes_a_lines_amount_then_removes_a_line(
    api,
    tenant_a,
    catalog,
    stripe_emulator,
    stripe_webhooks,
    stripe_sdk,
    django_capture_on_commit_callbacks,
):
    invoice = _draft(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)
    assert _add(api, tenant_a, invoice, {"amount": 2500, "description": "Onboarding"}).status_code == 201
    paid = Invoice.objects.get(project=tenant_a.project, status="paid")  # the subscription's: no line offered
    setup, onboarding = _line_id(invoice, "Setup"), _line_id(invoice, "Onboarding")
    client = _operator("finance")
    page, token = _form(client, "edit_line", [invoice, paid])
    assert f'<option value="{invoice.pk}:{setup}">{invoice.pk} · Setup · $15.00</option>' in page
    assert f'<option value="{invoice.pk}:{onboarding}">{invoice.pk} · Onboarding · $25.00</option>' in page
    assert page.count("<option value=") == 3  # "Choose a line", then the draft's two lines
    # A change of nothing is refused by the form: nothing sent.
    nothing = _apply(
        client, "edit_line", [invoice, paid], django_capture_on_commit_callbacks,
        line=f"{invoice.pk}:{onboarding}", what="change", reason="discount", operation=token,
    )  # fmt: skip
    assert nothing.status_code == 200
    assert "A change needs a new amount, a new description, or both." in nothing.content.decode()
    # A line of an invoice that is not selected is not taken.
    elsewhere = _apply(
        client, "edit_line", [paid], django_capture_on_commit_callbacks,
        line=f"{invoice.pk}:{onboarding}", what="change", amount="1.00", reason="discount",
    )  # fmt: skip
    assert (elsewhere.status_code, "Select a valid choice." in elsewhere.content.decode()) == (200, True)

    changed = _apply(
        client, "edit_line", [invoice, paid], django_capture_on_commit_callbacks,
        line=f"{invoice.pk}:{onboarding}", what="change", amount="20.00", reason="discount agreed",
        operation=token,
    )  # fmt: skip

    told = _told(client, changed)
    assert f"{invoice}: line changed; total $35.00" in told
    assert "Change or remove a draft&#x27;s line: done for 1 of 1." in told  # the chosen line's invoice only
    assert _at_stripe(stripe_sdk, invoice) == ("draft", 3500, [("Onboarding", 2000), ("Setup", 1500)])
    assert _mirror(invoice) == _at_stripe(stripe_sdk, invoice)
    assert _line_id(invoice, "Onboarding") == onboarding  # a change keeps the line's id
    update = AuditLogEntry.objects.get(action="invoice.line_update_requested")
    operator = User.objects.get(username="finance-op")
    assert (update.target_id, update.actor_type, update.actor_id, update.reason) == (
        invoice.pk,
        "user",
        str(operator.pk),
        "discount agreed",
    )
    assert update.before == {"line": onboarding, "amount": 2500, "description": "Onboarding"}
    assert (update.after["line"], update.after["amount"]) == (onboarding, 2000)
    assert not AuditLogEntry.objects.filter(target_id=paid.pk).exists()

    _page, remove_token = _form(client, "edit_line", [invoice])
    removal = {
        "line": f"{invoice.pk}:{setup}",
        "what": "remove",
        "reason": "not owed",
        "operation": remove_token,
    }
    removed = _apply(client, "edit_line", [invoice], django_capture_on_commit_callbacks, **removal)
    assert f"{invoice}: line removed; total $20.00" in _told(client, removed)
    # Submitted again: the same removal, continued (the line is gone; nothing more at Stripe, no error).
    again = _apply(client, "edit_line", [invoice], django_capture_on_commit_callbacks, **removal)

    assert f"{invoice}: line removed; total $20.00" in _told(client, again)
    assert _at_stripe(stripe_sdk, invoice) == ("draft", 2000, [("Onboarding", 2000)])
    assert _mirror(invoice) == _at_stripe(stripe_sdk, invoice)
    remove = AuditLogEntry.objects.get(action="invoice.line_remove_requested")
    assert (remove.actor_type, remove.actor_id, remove.reason) == ("user", str(operator.pk), "not owed")
    assert remove.before == {"line": setup, "amount": 1500, "description": "Setup"}
    stripe_webhooks.deliver()
    assert _mirror(invoice) == ("draft", 2000, [("Onboarding", 2000)])


def test_support_cannot_edit_a_drafts_lines(
    api,
    tenant_a,
    catalog,
    stripe_emulator,
    stripe_webhooks,
    stripe_sdk,
    django_capture_on_commit_callbacks,
):
    invoice = _draft(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)
    setup = _line_id(invoice, "Setup")
    client = _operator("support")
    listing = client.get(INVOICES)
    assert listing.status_code == 200
    assert b'value="add_line"' not in listing.content
    assert b'value="edit_line"' not in listing.content

    for action, fields in (
        ("add_line", {"amount": "25.00", "description": "Onboarding"}),
        ("edit_line", {"line": f"{invoice.pk}:{setup}", "what": "change", "amount": "1.00"}),
        ("edit_line", {"line": f"{invoice.pk}:{setup}", "what": "remove"}),
    ):
        _apply(client, action, [invoice], django_capture_on_commit_callbacks, reason="try", **fields)

    assert _at_stripe(stripe_sdk, invoice) == ("draft", 1500, [("Setup", 1500)])
    assert _mirror(invoice) == ("draft", 1500, [("Setup", 1500)])
    assert not AuditLogEntry.objects.filter(action__startswith="invoice.line_").exists()


def test_a_line_of_an_invoice_finalized_meanwhile_is_not_edited_and_the_operator_is_told(
    api,
    tenant_a,
    catalog,
    stripe_emulator,
    stripe_webhooks,
    stripe_sdk,
    django_capture_on_commit_callbacks,
):
    invoice = _draft(api, tenant_a, stripe_emulator, stripe_webhooks, stripe_sdk)
    setup = _line_id(invoice, "Setup")
    client = _operator("finance")
    _page, token = _form(client, "edit_line", [invoice])  # shown while it was a draft
    stripe_sdk().v1.invoices.finalize_invoice(invoice.stripe_invoice_id)  # its events not delivered yet
    assert Invoice.objects.get(pk=invoice.pk).status == "draft"

    attempts = (
        (
            "edit_line",
            {"line": f"{invoice.pk}:{setup}", "what": "change", "amount": "10.00", "operation": token},
        ),
        ("add_line", {"amount": "7.00", "description": "Too late"}),
    )

    for action, fields in attempts:
        response = _apply(
            client, action, [invoice], django_capture_on_commit_callbacks, reason="late", **fields
        )
        told = _told(client, response)
        assert f"{invoice}: Only a draft invoice&#x27;s lines can be edited; this one is open." in told
        assert "done for" not in told
    assert _at_stripe(stripe_sdk, invoice) == ("open", 1500, [("Setup", 1500)])
    assert len(stripe_sdk().v1.invoice_items.list({"invoice": invoice.stripe_invoice_id}).data) == 1
    assert not AuditLogEntry.objects.filter(action__startswith="invoice.line_").exists()

    # Once the mirror knows it is open, no line of it is offered: the operator is sent back and told why.
    stripe_webhooks.deliver()
    assert Invoice.objects.get(pk=invoice.pk).status == "open"
    offered = client.post(INVOICES, {"action": "edit_line", "_selected_action": [invoice.pk]})
    assert "No line to change: none of the selected invoices is a draft" in _told(client, offered)
