"""Property test of correctable usage across renewals, version moves and Stripe's webhooks (#52 point 5), and an
invoiced period credited at the price that billed it.

A real subscription at the emulator holds `pro`'s metered `calls` price (2 cents a call); `pro` has three published
versions (10 and 20 `api_calls` a period at 2 cents, then 20 at 3 cents: a new Stripe price). Random interleavings
of recorded usage, corrections (voids and amendments, retried correction ids included; an event Stripe may already
have invoiced is credited on the next invoice, `invoiced: credit`), renewals (the emulator's clock and Tollgate's
move past the period's end together) and version moves (now, to any version, through `POST
/subscriptions/version_moves`: one that reprices the metered item waits for the period's end, and is made final as
beat does). Every webhook Stripe sends
is held back and delivered later 0–3 times, shuffled among the others; the dropped ones are fetched as operators do
after an outage (`replay_webhooks --fetch-missing`).

Afterwards: each counter holds its events' corrected quantities; the money adds up — what the renewal invoices
billed for calls, plus the corrections' invoice items, plus what Stripe's meter holds for the open period, is each
period's corrected usage at the price its renewal billed (the open period's at the live price), so nothing was
billed or credited twice or lost, a price change included; each correction id made one correction and at most one
invoice item; the subscriber has its version's limit and Stripe price.

20 seeds here (`TOLLGATE_CORRECTION_SEEDS`, as the other correction property tests); `make soak` runs 500.
"""

import io
import random
from collections import defaultdict
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from billing.models import Invoice, SubscriptionItem
from billing.services.version_moves import version_moves_due
from catalog.models import Feature, Price
from entitlements.models import UsageCorrection, UsageCounter, UsageEvent
from tests.billing.test_meter_reports import _with_card
from tests.catalog import price_create, product_create
from tests.e2e.convergence import Capture, Intake
from tests.entitlements.helpers import feature, listed
from tests.entitlements.test_plan_credits import _no_failed_events
from tests.entitlements.test_usage_corrections_property import _seeds
from webhooks.models import StripeEvent

LIMITS = {1: 10, 2: 20}
MOVES = "/api/v1/subscriptions/version_moves"


@pytest.fixture
def subscribed(api, tenant_a, stripe_emulator, stripe_sdk, stripe_webhooks):
    """`user-1` subscribes at Stripe to `pro`'s metered `calls` price on version 1; version 2 is published
    after. (The subscription's id, its customer at Stripe.)"""
    calls = feature(tenant_a.project, "api_calls", Feature.Type.METERED)
    pro = product_create(tenant_a.project, "pro", "Pro")
    price_create(pro, "calls", 2, interval="month", usage_type="metered", meter="api_calls")
    calls.refresh_from_db()
    answer = api.patch("/api/v1/products/pro", {"features": {"api_calls": LIMITS[1]}}, key=tenant_a.key)
    assert answer.status_code == 200, answer.json()
    first = answer.json()["version"]
    sdk = stripe_sdk()
    stripe_customer = _with_card(api, tenant_a, sdk)
    price = Price.objects.get(key="calls").stripe_price_id
    sdk.v1.subscriptions.create({"customer": stripe_customer, "items": [{"price": price}]})
    stripe_webhooks.deliver()
    answer = api.patch("/api/v1/products/pro", {"features": {"api_calls": LIMITS[2]}}, key=tenant_a.key)
    assert answer.status_code == 200, answer.json()
    item = SubscriptionItem.objects.get()
    assert item.product_version == first
    _no_failed_events()
    return item.subscription_id, stripe_customer, first


def _repriced(api, key) -> int:
    """Version 3: version 2's features, `calls` at 3 cents (a new Stripe price); its number."""
    drafted = api.put("/api/v1/products/pro/draft", {"prices": {"calls": {"unit_amount": 3}}}, key=key)
    assert drafted.status_code == 200, drafted.json()
    number = drafted.json()["version"]
    published = api.post("/api/v1/products/pro/draft/publish", {"version": number}, key=key)
    assert published.status_code == 200, published.json()
    return number


def _correct(api, key, body):
    return api.post("/api/v1/usage/corrections", body, key=key)


@pytest.mark.parametrize("seed", _seeds())
def test_corrections_across_renewals_version_moves_and_unreliable_webhooks_converge(
    api,
    tenant_a,
    subscribed,
    stripe_emulator,
    stripe_sdk,
    django_capture_on_commit_callbacks,
    seed,
):
    subscription, stripe_customer, first = subscribed
    old_price = Price.objects.get(key="calls").stripe_price_id
    third = _repriced(api, tenant_a.key)
    cents = {old_price: 2, Price.objects.get(key="calls").stripe_price_id: 3}  # each Stripe price, a call
    versions = {first: LIMITS[1], first + 1: LIMITS[2], third: LIMITS[2]}
    rng = random.Random(seed)
    capture, intake = Capture(stripe_emulator), Intake()
    held: list = []  # deliveries Stripe made that have not reached Tollgate yet
    expected: dict[str, int] = {}  # event id → the quantity it should count
    made: dict[str, tuple[str, str, int]] = {}  # correction id → (event, action, quantity after)
    since = timezone.now() - timedelta(minutes=1)
    sdk = stripe_sdk()

    def deliver_some() -> None:
        """Some of the held deliveries reach Tollgate, each 0–3 times, in a shuffled order."""
        capture.collect()
        held.extend(capture.deliveries)
        capture.deliveries.clear()
        now = [held.pop(rng.randrange(len(held))) for _ in range(rng.randint(0, len(held)))]
        sends = [delivery for delivery in now for _ in range(rng.randint(0, 3))]
        rng.shuffle(sends)
        with django_capture_on_commit_callbacks(execute=True):
            for delivery in sends:
                assert intake.deliver(delivery) == 200, intake.refused

    with time_machine.travel(timezone.now(), tick=True) as traveller:
        for step in range(rng.randint(10, 22)):
            op = rng.random()
            if op < 0.1:  # a renewal: Stripe's clock and Tollgate's past the period's end, together
                live = sdk.v1.subscriptions.retrieve(
                    SubscriptionItem.objects.get().subscription.stripe_subscription_id
                )
                ahead = live["items"].data[0].current_period_end - stripe_emulator.clock.now() + 60
                offset = stripe_emulator.clock._offset
                with django_capture_on_commit_callbacks(execute=True):
                    stripe_emulator.advance(ahead)
                traveller.shift(ahead)
                stripe_emulator.clock.set_offset(offset)  # Tollgate's clock moved the emulator's with it
            elif (
                op < 0.2
            ):  # a version move, now (one that reprices the metered item waits for the period's end)
                to = rng.choice(sorted(versions))
                body = {"product": "pro", "to_version": to, "subscriptions": [subscription]}
                with django_capture_on_commit_callbacks(execute=True):
                    answer = api.post(MOVES, body, key=tenant_a.key)
                assert answer.status_code == 200, answer.json()
                assert answer.json()["moved"] in (0, 1)
                for move in answer.json()["moves"]:
                    assert not move["prices"] or move["proration"] == "period_end", move
            elif op < 0.55 or not expected:
                event_id = rng.choice([f"e{len(expected)}", *list(expected)[-2:]])  # new, or a retry
                quantity = expected.get(event_id, rng.randint(0, 20))
                body = {"id": event_id, "customer": "user-1", "feature": "api_calls", "quantity": quantity}
                answer = api.post("/api/v1/usage", body, key=tenant_a.key)
                assert answer.status_code == (200 if event_id in expected else 201), answer.json()
                expected.setdefault(event_id, quantity)
            else:
                if made and rng.random() < 0.2:  # a correction retried
                    correction_id = rng.choice(list(made))
                    event_id, action, after = made[correction_id]
                else:
                    correction_id, event_id = f"c{step}", rng.choice(list(expected))
                    action = rng.choice(["void", "amend"])
                    after = 0 if action == "void" else rng.randint(0, 25)
                body = {
                    "id": correction_id,
                    "event": event_id,
                    "action": action,
                    "reason": f"seed {seed}",
                    "invoiced": "credit",
                }
                if action == "amend":
                    body["quantity"] = after
                with django_capture_on_commit_callbacks(execute=True):
                    answer = _correct(api, tenant_a.key, body)
                retried = correction_id in made
                if answer.status_code in (200, 201):
                    assert answer.status_code == (200 if retried else 201), answer.json()
                    if not retried:
                        made[correction_id] = (event_id, action, after)
                        expected[event_id] = after
                else:
                    code = answer.json()["error"]["code"]
                    assert code in ("usage_event_voided", "correction_unchanged"), answer.json()
            deliver_some()
            with django_capture_on_commit_callbacks(execute=True):
                version_moves_due()  # as beat does: a move scheduled for a period's end that passed
            traveller.shift(rng.randint(0, 3600))
        # What Stripe sent and Tollgate never received is fetched, as after an outage.
        capture.collect()
        out = io.StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command("replay_webhooks", "--fetch-missing", "--since", since.isoformat(), stdout=out)
            version_moves_due()
        _no_failed_events()

    # Each counter holds its events' corrected quantities; the totals are the corrected usage.
    events = {e.event_id: (e.quantity, e.period_start) for e in UsageEvent.objects.all()}
    assert {event_id: quantity for event_id, (quantity, _) in events.items()} == expected
    periods: dict = defaultdict(int)
    for quantity, period_start in events.values():
        periods[period_start] += quantity
    assert dict(UsageCounter.objects.values_list("period_start", "used")) == periods
    assert sum(UsageCounter.objects.values_list("used", flat=True)) == sum(expected.values())
    # Each correction id made one correction, and at most one invoice item.
    assert set(UsageCorrection.objects.values_list("correction_id", flat=True)) == set(made)
    assert UsageCorrection.objects.filter(meter="pending").count() == 0
    assert UsageCorrection.objects.filter(adjustment_status="pending").count() == 0
    items = sdk.v1.invoice_items.list({"customer": stripe_customer, "limit": 100}).data
    ours = dict(
        UsageCorrection.objects.exclude(adjustment_item="").values_list(
            "adjustment_item", "adjustment_amount"
        )
    )
    assert {item.id: item.amount for item in items} == ours
    # The money adds up: invoiced calls + the corrections' credits + the open period's meter = each period's
    # corrected usage at the price its renewal billed it (the open one's: the live price), so no usage escaped an
    # invoice when a move changed the price, and nothing was billed or credited twice.
    lines = [
        line
        for invoice in sdk.v1.invoices.list({"customer": stripe_customer, "limit": 100}).data
        for line in invoice.lines.data
        if line.pricing and line.pricing.price_details and line.pricing.price_details.price in cents
    ]
    billed_at: dict[int, int] = {}  # a period's start at Stripe → the cents a call its renewal billed
    for line in lines:
        rate = cents[line.pricing.price_details.price]
        assert line.amount == rate * line.quantity
        assert billed_at.setdefault(line.period.start, rate) == rate  # one price a period
    invoiced = sum(line.amount for line in lines)
    live = sdk.v1.subscriptions.retrieve(SubscriptionItem.objects.get().subscription.stripe_subscription_id)
    period = live["items"].data[0]
    live_rate = cents[period.price.id]
    summaries = sdk.v1.billing.meters.event_summaries.list(
        Feature.objects.get(key="api_calls").stripe_meter_id,
        {
            "customer": stripe_customer,
            "start_time": period.current_period_start,
            "end_time": period.current_period_end,
        },
    )
    open_period = sum(int(float(s.aggregated_value)) for s in summaries.data)
    owed = sum(billed_at.get(int(start.timestamp()), live_rate) * used for start, used in periods.items())
    assert invoiced + sum(ours.values()) + live_rate * open_period == owed
    assert Invoice.objects.filter(billing_reason="subscription_cycle").count() == len(
        [
            i
            for i in sdk.v1.invoices.list({"customer": stripe_customer, "limit": 100}).data
            if i.billing_reason == "subscription_cycle"
        ]
    )
    # The subscriber is on the version its moves left it on, with its limit and that version's Stripe price.
    item = SubscriptionItem.objects.get()
    assert listed(api, tenant_a.key, "user-1")["api_calls"]["limit"] == versions[item.product_version]
    if item.pending_version is None:
        assert live_rate == (3 if item.product_version == third else 2)
    assert StripeEvent.objects.filter(status="failed").count() == 0


def test_an_invoiced_event_is_credited_at_the_price_that_billed_its_period(
    api, tenant_a, subscribed, stripe_emulator, stripe_sdk, stripe_webhooks
):
    """The period is invoiced at 2 cents a call; then `pro`'s calls price goes to 3 cents in a new version
    (the subscriber keeps the one they bought). Voiding a call of the invoiced period credits 2 cents a call —
    what the invoice billed — not the new price's 3."""
    _, stripe_customer, _ = subscribed
    sdk = stripe_sdk()
    body = {"id": "e1", "customer": "user-1", "feature": "api_calls", "quantity": 10}
    assert api.post("/api/v1/usage", body, key=tenant_a.key).status_code == 201
    live = sdk.v1.subscriptions.retrieve(SubscriptionItem.objects.get().subscription.stripe_subscription_id)
    ahead = live["items"].data[0].current_period_end - stripe_emulator.clock.now() + 60
    with time_machine.travel(timezone.now() + timedelta(seconds=ahead), tick=True):
        stripe_emulator.clock.set_offset(0)  # the emulator reads the travelled clock
        stripe_emulator.advance(0)
        stripe_webhooks.deliver()
        renewal = Invoice.objects.get(billing_reason="subscription_cycle")
        calls = Price.objects.get(key="calls")
        assert [
            (line["quantity"], line["amount"])
            for line in renewal.lines
            if line["stripe_price_id"] == (calls.stripe_price_id)
        ] == [(10, 20)]
        drafted = api.put(
            "/api/v1/products/pro/draft", {"prices": {"calls": {"unit_amount": 3}}}, key=tenant_a.key
        )
        assert drafted.status_code == 200, drafted.json()
        published = api.post(
            "/api/v1/products/pro/draft/publish", {"version": drafted.json()["version"]}, key=tenant_a.key
        )
        assert published.status_code == 200, published.json()
        assert Price.objects.get(key="calls").unit_amount == 3
        voided = api.post(
            "/api/v1/usage/corrections",
            {"id": "fix-1", "event": "e1", "action": "void", "reason": "bad deploy", "invoiced": "credit"},
            key=tenant_a.key,
        )
    assert voided.status_code == 201, voided.json()
    assert voided.json()["invoice_adjustment"]["amount"] == -20
    items = sdk.v1.invoice_items.list({"customer": stripe_customer}).data
    assert [(i.amount, i.currency) for i in items] == [(-20, "usd")]
