"""A credits lot taken back (a refund, a grant removed) while a waterfall hold holds some of its credits: the
hold's release gives nothing back to the voided lot, so its ledger still sums to what it holds, and `as_of`
answers the live balance."""

from django.utils import timezone

from entitlements.models import CreditLedgerEntry, CreditLot, Grant
from tests.entitlements.test_credits_waterfall import _paying, check, consume, grant, hold, waterfall  # noqa: F401

HOLDS = "/api/v1/entitlements/holds"


def test_release_after_the_lot_was_taken_back_gives_nothing_back_to_it(api, tenant_a, waterfall):  # noqa: F811
    grant(api, tenant_a, 10)  # lot A: spent first
    grant(api, tenant_a, 5, reason="second")  # lot B
    consume(api, tenant_a, "c1", 10)  # the allowance
    hold(api, tenant_a, "h1", 3)  # 3 units paid with 6 credits of lot A
    lot_a = CreditLot.objects.get(amount=10)
    assert lot_a.remaining == 4
    first = Grant.objects.order_by("created_at").first()
    assert api.delete(f"/api/v1/entitlements/grants/{first.pk}", key=tenant_a.key).status_code == 200
    lot_a.refresh_from_db()
    assert (lot_a.remaining, lot_a.voided_at is not None) == (0, True)
    assert api.post(f"{HOLDS}/h1/release", {}, key=tenant_a.key).status_code == 200
    # Live: only lot B counts.
    live_balance, live_held = _paying(api, tenant_a)
    assert (live_balance, live_held) == (5, 0)
    # as_of now answers what the live check does.
    at = timezone.now().isoformat().replace("+00:00", "Z")
    url = f"/api/v1/entitlements/check?customer=u1&feature=ai_credits&as_of={at}"
    assert api.get(url, key=tenant_a.key).json()["balance"] == live_balance
    # The voided lot keeps nothing, and the ledger of lot A sums to what it has (0).
    lot_a.refresh_from_db()
    ledger_a = sum(CreditLedgerEntry.objects.filter(lot=lot_a).values_list("amount", flat=True))
    assert (lot_a.remaining, ledger_a) == (0, 0)
