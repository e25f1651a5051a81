"""The tie-out of a project's money with Stripe's balance transactions: `manage.py tie_out` and the reconciliation's
money check, on the emulator through the official SDK. Amounts are exact: the emulator's fee is Stripe's 2.9% +
30 of a card charge, its dispute fee 15.00."""

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from billing.models import BalanceTransaction, Drift, Payment, Refund
from tests.billing.payment_factories import paid_credit_packs
from tests.stripe_emulator.payments_fixtures import control


def _tie_out(project, *extra):
    now = timezone.now()
    out = io.StringIO()
    args = ["tie_out", "--project", project.slug, "--start", (now - timedelta(days=1)).isoformat()]
    args += ["--end", (now + timedelta(days=1)).isoformat(), *extra]
    try:
        call_command(*args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), str(exc)
    return out.getvalue(), None


def _figures(out: str) -> dict[str, tuple[int, ...]]:
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) in (2, 3) and parts[0] in (
            "charge",
            "refund",
            "refund_failure",
            "dispute",
            "dispute_reversal",
            "fee",
            "net",
        ):
            rows[parts[0]] = tuple(int(p) for p in parts[1:])
    return rows


def test_a_paid_and_partly_refunded_payment_ties_out_to_the_cent(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk)
    stripe_webhooks.deliver()
    refunded = api.post(f"/api/v1/payments/{paid['id']}/refund", {"amount": 500}, key=tenant_a.key)
    assert refunded.status_code == 200, refunded.content
    stripe_webhooks.deliver()

    out, error = _tie_out(tenant_a.project)

    assert error is None, out
    assert paid["amount"] == 3000
    # Stripe: the charge's 3000 less 2.9% + 30 (117), the refund's 500 (its fee is not returned).
    assert _figures(out) == {
        "charge": (3000, 3000),
        "refund": (-500, -500),
        "refund_failure": (0, 0),
        "dispute": (0, 0),
        "dispute_reversal": (0, 0),
        "fee": (117,),
        "net": (2383,),
    }
    assert out.splitlines()[0] == "Read 2 balance transaction(s) of alpha from Stripe."
    assert out.splitlines()[-1] == "Tied out."
    stored = sorted(BalanceTransaction.objects.values_list("type", "amount", "fee", "net", "payment_intent"))
    intent = paid["stripe_payment_intent_id"]
    assert stored == [("charge", 3000, 117, 2883, intent), ("refund", -500, 0, -500, intent)]

    # Read again: nothing is stored twice.
    out, error = _tie_out(tenant_a.project)
    assert error is None
    assert BalanceTransaction.objects.count() == 2


def test_a_refund_made_at_stripe_whose_events_were_lost_does_not_tie_out_until_reconciled(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk)
    stripe_webhooks.deliver()
    stripe_emulator.webhooks.sender = lambda *args: 200  # every event from here on lost
    at_stripe = sdk.v1.refunds.create({"payment_intent": paid["stripe_payment_intent_id"], "amount": 300})
    stripe_emulator.flush_webhooks()

    out, error = _tie_out(tenant_a.project)

    assert error == "Not tied out: 1 movement(s) differ."
    assert f"    differs: refund {at_stripe.id}: Tollgate 0, Stripe -300" in out.splitlines()
    assert _figures(out)["refund"] == (-300, 0)
    assert not Refund.objects.exists()

    reconciled = io.StringIO()
    with pytest.raises(CommandError):
        call_command("reconcile", "--project", tenant_a.project.slug, stdout=reconciled)
    drift = Drift.objects.get(object_type="balance_transaction")
    assert (drift.kind, drift.stripe_id, drift.field, drift.local_value, drift.stripe_value) == (
        "missing_locally",
        at_stripe.id,
        "refund (usd)",
        "0",
        "-300",
    )

    # Reconciling with fix mirrors the refund through the refund check before the money is compared: the money
    # ties out, and the first run's drift is resolved.
    call_command("reconcile", "--project", tenant_a.project.slug, "--fix", stdout=io.StringIO())
    assert list(Refund.objects.values_list("stripe_refund_id", "amount")) == [(at_stripe.id, 300)]
    assert Drift.objects.get(pk=drift.pk).status == "resolved"
    out, error = _tie_out(tenant_a.project, "--no-sync")
    assert error is None, out


def test_a_lost_dispute_ties_out_with_its_fee(api, tenant_a, catalog, stripe_sdk, stripe_webhooks):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk, card="pm_card_createDispute")
    stripe_webhooks.deliver()
    payment = Payment.objects.get(pk=paid["id"])
    assert (payment.dispute_status, payment.dispute_amount) == ("needs_response", 3000)
    dispute = sdk.v1.disputes.list({"payment_intent": paid["stripe_payment_intent_id"]}).data[0]
    sdk.v1.disputes.close(dispute.id)
    stripe_webhooks.deliver()

    out, error = _tie_out(tenant_a.project)

    assert error is None, out
    figures = _figures(out)
    assert (figures["charge"], figures["dispute"], figures["fee"], figures["net"]) == (
        (3000, 3000),
        (-3000, -3000),
        (117 + 1500,),
        (3000 - 117 - 3000 - 1500,),
    )
    assert Payment.objects.get(pk=paid["id"]).dispute_status == "lost"


def test_a_won_dispute_ties_out_withdrawn_and_reinstated(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk, card="pm_card_createDispute")
    stripe_webhooks.deliver()
    dispute = sdk.v1.disputes.list({"payment_intent": paid["stripe_payment_intent_id"]}).data[0]
    control(stripe_emulator, f"/_emulator/disputes/{dispute.id}/resolve", outcome="won")
    stripe_webhooks.deliver()
    assert Payment.objects.get(pk=paid["id"]).dispute_status == "won"

    out, error = _tie_out(tenant_a.project)

    assert error is None, out
    figures = _figures(out)
    assert (figures["dispute"], figures["dispute_reversal"]) == ((-3000, -3000), (3000, 3000))
    fees = sum(BalanceTransaction.objects.values_list("fee", flat=True))
    assert figures["fee"] == (fees,)
    assert figures["net"] == (3000 - fees,)


def test_a_dispute_mirrored_without_its_amount_is_told_and_repaired(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks
):
    """A dispute applied before Tollgate kept disputed amounts (an upgrade): the tie-out names it, and a
    reconciliation with fix reads the amount from Stripe's dispute."""
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk, card="pm_card_createDispute")
    stripe_webhooks.deliver()
    Payment.objects.filter(pk=paid["id"]).update(dispute_amount=0)
    intent = paid["stripe_payment_intent_id"]

    out, error = _tie_out(tenant_a.project)

    assert error == "Not tied out: 1 movement(s) differ."
    assert f"    differs: dispute {intent}: Tollgate 0, Stripe -3000" in out.splitlines()
    call_command("reconcile", "--project", tenant_a.project.slug, "--fix", stdout=io.StringIO())
    assert Payment.objects.get(pk=paid["id"]).dispute_amount == 3000
    out, error = _tie_out(tenant_a.project, "--no-sync")
    assert error is None, out


def test_a_project_reads_only_its_own_money_from_a_shared_account(
    api, tenant_a, tenant_b, catalog, catalog_b, stripe_sdk, stripe_webhooks
):
    """Both projects use the platform's Stripe account: each keeps the balance transactions of its own payments,
    never the other's, and ties out on its own money alone."""
    sdk = stripe_sdk()
    paid_a = paid_credit_packs(api, tenant_a, sdk)
    paid_b = paid_credit_packs(api, tenant_b, sdk)
    stripe_webhooks.deliver()

    out_b, error_b = _tie_out(tenant_b.project)
    _, error_a = _tie_out(tenant_a.project)

    assert (error_a, error_b) == (None, None)
    assert sorted(BalanceTransaction.objects.values_list("project__slug", "payment_intent")) == [
        ("alpha", paid_a["stripe_payment_intent_id"]),
        ("bravo", paid_b["stripe_payment_intent_id"]),
    ]
    assert _figures(out_b)["charge"] == (3000, 3000)


def test_bad_periods_are_refused(db, tenant_a):
    for args, message in [
        (["--month", "2026-13"], "--month must be YYYY-MM."),
        (["--start", "2026-11-01T00:00:00+00:00"], "Give either --month, or both --start and --end."),
        ([], "Give either --month, or both --start and --end."),
    ]:
        with pytest.raises(CommandError) as refused:
            call_command("tie_out", "--project", tenant_a.project.slug, *args, stdout=io.StringIO())
        assert str(refused.value) == message
    assert not BalanceTransaction.objects.exists()


def test_the_back_office_shows_stripes_money_in_words_and_money(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks
):
    from django.contrib.auth.models import User
    from django.test import Client

    paid_credit_packs(api, tenant_a, stripe_sdk())
    stripe_webhooks.deliver()
    _tie_out(tenant_a.project)
    txn = BalanceTransaction.objects.get()
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))

    listing = re.sub(r"\s+", " ", client.get("/admin/billing/balancetransaction/").content.decode())
    page = re.sub(
        r"\s+", " ", client.get(f"/admin/billing/balancetransaction/{txn.pk}/change/").content.decode()
    )

    assert (
        '<td class="field-category">Charge</td><td class="field-amount">$30.00</td>'
        '<td class="field-fee">$1.17</td><td class="field-net">$28.83</td>'
    ) in listing
    shown = dict(re.findall(r'<label>([^<]+):</label> <div class="readonly">([^<]*)</div>', page))
    assert (shown["Gross"], shown["Fee"], shown["Net"], shown["Category"], shown["Fees"]) == (
        "$30.00",
        "$1.17",
        "$28.83",
        "Charge",
        "Stripe processing fees: $1.17",
    )
