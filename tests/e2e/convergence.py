"""The machinery of the convergence property test (issue #14, `tests/e2e/test_convergence.py`).

One seed = one scenario, chosen by `random.Random(seed)` and driven through Tollgate's public API and the
emulator's customer-side controls, while every Stripe webhook is *captured* instead of delivered. Then every
captured event is delivered 0–3 times in a shuffled order to Tollgate's intake, real Celery workers (separate
processes, reaching the emulator over HTTP) process them, the repair tools of docs/operations.md run ("After an
outage"), and every mirror is compared field by field with what Stripe (the emulator, read through the official
SDK) holds.

Time: Stripe's clock is moved with `emulator.advance` (renewals, dunning). Tollgate's clock must move with it —
in production both are wall time, and a Tollgate clock a month behind Stripe's would judge grace periods, credit
expiries and "is this event newer" against the wrong instant. So this process and every worker travel
(time-machine) by the emulator's offset: this process through `SharedClock`, the workers by reading the offset
file before every task (`worker_main`). The emulator itself reads the real wall clock plus its own offset.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import models
from django.test import Client
from django.utils import timezone

from billing.models import Invoice, Payment, Subscription
from customers.models import Customer
from entitlements.models import CreditLedgerEntry, CreditLot
from events.models import Event
from stripe_emulator.core.clock import Clock
from stripe_emulator.core.webhooks import signature_header
from stripe_gateway.gateway import PLATFORM_ACCOUNT
from tests.redis_databases import given_broker_url
from webhooks.models import StripeEvent, StripeWebhookEndpoint

ROOT = Path(__file__).resolve().parents[2]
OK_URL = "https://app.example.com/ok"

CARD_OK = "4242424242424242"
CARD_DISPUTED = "4000000000000259"  # succeeds, then a `fraudulent` dispute opens
CARD_FAILS_WHEN_CHARGED = "4000000000000341"  # attaches, every charge fails
PM_OK = "pm_card_visa"
PM_DISPUTED = "pm_card_createDispute"

DAY = 86_400
PACK_CREDITS = 1000  # `credits-1000` gives 1,000 ai_credits per unit
PLAN_CREDITS = 100  # the `pro` product gives 100 ai_credits per paid period (API.md "plan credits")
PAST_DUE_GRACE = timedelta(days=3)  # the projects' default `past_due_grace_seconds`
CREDITS_FEATURE = "ai_credits"
ACCESS_FEATURE = "pro_access"
SEATS_FEATURE = "seats"
# Invoices that may bill a whole period in advance (a change's only when it restarts the period: its line for the
# new price is not a proration), as `billing.models.PLAN_CREDIT_REASONS`.
PERIOD_START_REASONS = ("subscription_create", "subscription_cycle", "subscription_update")
DISPUTE_KEEPS_MONEY = ("won", "warning_closed")

# Tenant events that happen once per object, whatever the path; others once per transition (previous → state).
ONCE_PER_OBJECT = (
    "subscription.created",
    "subscription.canceled",
    "invoice.paid",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "checkout.completed",
    "checkout.expired",
)
TRANSITION_FIELDS = (
    "status",
    "price",
    "quantity",
    "cancel_at_period_end",
    "current_period_start",
    "current_period_end",
    "amount_refunded",
    "dispute_status",
)

CLOCK_FILE_ENV = "TOLLGATE_CONVERGENCE_CLOCK_FILE"
STRIPE_BASE_ENV = "TOLLGATE_CONVERGENCE_STRIPE_API_BASE"


# --- configuration ---------------------------------------------------------------------------------------------


def seeds() -> list[int]:
    """`TOLLGATE_CONVERGENCE_SEEDS`: a count N (seeds 0…N-1, default 20) or a comma-separated list ("7,12")."""
    raw = os.environ.get("TOLLGATE_CONVERGENCE_SEEDS", "20").strip()
    if "," in raw:
        return [int(part) for part in raw.split(",") if part.strip()]
    return list(range(int(raw)))


def broker_url() -> str | None:
    """The workers' broker as given in `TOLLGATE_TEST_BROKER_URL` (with REDIS_URL), else None: never a database
    derived from REDIS_URL's (tests/redis_databases.py)."""
    if not os.environ.get("REDIS_URL"):
        return None
    return given_broker_url()


def wait_seconds() -> float:
    """How long the workers get to drain the inbox before the test fails (`TOLLGATE_CONVERGENCE_WAIT`)."""
    return float(os.environ.get("TOLLGATE_CONVERGENCE_WAIT", "60"))


def worker_count() -> int:
    """Worker processes (`TOLLGATE_CONVERGENCE_WORKERS`, default 2: events are applied by several workers, as
    in production)."""
    return max(1, int(os.environ.get("TOLLGATE_CONVERGENCE_WORKERS", "2")))


# --- time ------------------------------------------------------------------------------------------------------


def real_time() -> float:
    """Wall time, even while time-machine travels."""
    if time_machine.escape_hatch.is_travelling():
        return float(time_machine.escape_hatch.time.time())
    return time.time()


def _read_offset(path: Path) -> float:
    try:
        return float(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0.0


class SharedClock:
    """Tollgate's clock (this process and the workers) = the emulator's clock (wall time + its offset)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0.0
        self._traveller: Any = None
        self._coordinates: Any = None

    def follow(self, emulator: Any) -> None:
        """Makes the emulator read the real wall clock (time-machine moves Tollgate, not Stripe twice) and puts
        Tollgate at the emulator's offset."""
        emulator.clock = Clock(real_time, offset=emulator.clock.offset)
        self.set(emulator.clock.offset)

    def set(self, offset: float) -> None:
        self.offset = offset
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(repr(offset))
        temporary.replace(self.path)  # workers never read half a number
        destination = real_time() + offset
        if self._coordinates is None:
            self._traveller = time_machine.travel(destination, tick=True)
            self._coordinates = self._traveller.start()
        else:
            self._coordinates.move_to(destination, tick=True)

    def stop(self) -> None:
        if self._traveller is not None:
            self._traveller.stop()
        self._traveller = self._coordinates = None
        self.path.write_text("0")


def worker_main() -> None:
    """A worker subprocess: `python -c "import django; django.setup(); from tests.e2e.convergence import
    worker_main; worker_main()" worker …celery options`. Talks to the test's emulator over HTTP and keeps its
    clock at the test's offset (read before every task: the test moves it only while the inbox is idle)."""
    from celery.signals import task_prerun
    from django.conf import settings

    settings.STRIPE_API_BASE = os.environ[STRIPE_BASE_ENV]  # config.settings.test pins the in-process one
    clock_file = Path(os.environ[CLOCK_FILE_ENV])
    state = {"offset": _read_offset(clock_file)}
    coordinates = time_machine.travel(real_time() + state["offset"], tick=True).start()

    def follow_clock(**_: Any) -> None:
        offset = _read_offset(clock_file)
        if offset != state["offset"]:
            coordinates.move_to(real_time() + offset, tick=True)
            state["offset"] = offset

    task_prerun.connect(follow_clock, weak=False)
    from config.celery import app

    app.worker_main(sys.argv[1:])


def configure_features(api: Any, key: str) -> None:
    """The features the comparison reads (`ai_credits`, `pro_access`, `seats`) and what `pro` and `credits`
    give of them, through the tenant API."""
    for feature, kind in (
        (CREDITS_FEATURE, "credits"),
        (ACCESS_FEATURE, "boolean"),
        (SEATS_FEATURE, "allocation"),
    ):
        created = api.post("/api/v1/features", {"key": feature, "name": feature, "type": kind}, key=key)
        assert created.status_code == 201, created.content
    for product, features in (
        ("pro", {CREDITS_FEATURE: PLAN_CREDITS, ACCESS_FEATURE: True, SEATS_FEATURE: {"per_unit": 1}}),
        ("credits", {CREDITS_FEATURE: PACK_CREDITS}),
    ):
        changed = api.patch(f"/api/v1/products/{product}", {"features": features}, key=key)
        assert changed.status_code == 200, changed.content


# --- the workers -----------------------------------------------------------------------------------------------

_BOOTSTRAP = "import django; django.setup(); from tests.e2e.convergence import worker_main; worker_main()"


class Workers:
    """Real Celery workers (solo pool, one process each) on the test database and the Redis broker."""

    def __init__(self, *, count: int, env: dict[str, str], log_dir: Path) -> None:
        self.count = count
        self.env = env
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self) -> None:
        for index in range(self.count):
            log = self.log_dir / f"worker{index}.log"
            self.logs.append(log)
            with log.open("wb") as stream:
                self.processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-c",
                            _BOOTSTRAP,
                            "worker",
                            "--pool=solo",
                            f"--hostname=convergence{index}@%h",
                            "--without-heartbeat",
                            "--without-gossip",
                            "--without-mingle",
                            "--loglevel=WARNING",
                        ],
                        cwd=ROOT,
                        env=self.env,
                        stdout=subprocess.DEVNULL,
                        stderr=stream,
                    )
                )

    def check(self) -> None:
        for process, log in zip(self.processes, self.logs, strict=True):
            if process.poll() is not None:
                raise AssertionError(f"a worker exited ({process.returncode}):\n{self.tail(log)}")

    @staticmethod
    def tail(log: Path, size: int = 4000) -> str:
        try:
            return log.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def log_tail(self, size: int = 2000) -> str:
        return "\n".join(f"--- {log.name}\n{self.tail(log, size)}" for log in self.logs)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_idle(workers: Workers, timeout: float, what: str) -> None:
    """Until no Stripe event is `received` or `processing` (bounded), else fails with their statuses."""
    deadline = time.monotonic() + timeout
    pending = StripeEvent.objects.filter(
        status__in=(StripeEvent.Status.RECEIVED, StripeEvent.Status.PROCESSING)
    )
    while time.monotonic() < deadline:
        workers.check()
        if not pending.exists():
            return
        time.sleep(0.05)
    rows = list(
        pending.order_by("stripe_created").values_list(
            "type", "stripe_event_id", "status", "attempts", "next_attempt_at", "last_error"
        )
    )
    listed = "\n".join(f"  {row}" for row in rows[:50])
    raise AssertionError(
        f"{what}: {len(rows)} Stripe event(s) still pending after {timeout:.0f} s:\n{listed}\n"
        f"{workers.log_tail()}"
    )


def settle_as_in_production(workers: Workers, timeout: float, what: str) -> bool:
    """`wait_idle`, with beat's part played: in production beat's sweep (every 30 s) queues again every key whose
    event is due — a retry whose broker countdown was lost, an event stored but never queued. Here the workers
    travel in time while Celery's ETA timer of their main process does not, so a short retry's countdown lands
    a month away: once the inbox stops moving for a few seconds, the sweep runs as beat would, 31 s ahead.
    Returns whether the sweep was needed."""
    try:
        wait_idle(workers, min(5.0, timeout), what)
        return False
    except AssertionError:
        pass
    from webhooks.services.process import stripe_events_requeue_due

    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=True):
        stripe_events_requeue_due()
    wait_idle(workers, timeout, what)
    return True


# --- webhooks: captured, then delivered -------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    headers: dict[str, str]

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def label(self) -> str:
        return f"{self.event['type']} {self.event['id']}"


class Capture:
    """The emulator's webhook sender: records each delivery (url, body, headers) and answers 200."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.deliveries: list[Delivery] = []
        emulator.webhooks.sender = self.send

    def send(self, url: str, body: bytes, headers: Any) -> int:
        self.deliveries.append(Delivery(url, bytes(body), dict(headers)))
        return 200

    def collect(self) -> None:
        """Takes every event queued at the emulator, in Stripe's order."""
        self.emulator.flush_webhooks()


class Intake:
    """Posts captured deliveries to Tollgate's intake (`POST /webhooks/stripe`) through Django's test client."""

    def __init__(self) -> None:
        self.client = Client()
        self.refused: list[tuple[str, int, str]] = []

    def deliver(self, delivery: Delivery) -> int:
        header = delivery.headers["Stripe-Signature"]
        signed_at = int(header.split(",")[0].split("=", 1)[1])
        if abs(time.time() - signed_at) > 60:
            # Captured before a clock jump: Stripe signs every retry afresh, with the endpoint's secret.
            secret = StripeWebhookEndpoint.objects.get(account=PLATFORM_ACCOUNT).secret
            header = signature_header(delivery.body, secret, int(time.time()))
        response = self.client.post(
            urlsplit(delivery.url).path,
            data=delivery.body,
            content_type="application/json",
            headers={"Stripe-Signature": header},
        )
        if response.status_code != 200:
            self.refused.append((delivery.label(), response.status_code, response.content.decode()[:300]))
        return int(response.status_code)


# --- the scenario ----------------------------------------------------------------------------------------------


@dataclass
class Pack:
    index: int
    flow: str  # checkout | intent
    quantity: int
    disputed: bool
    payment: str = ""  # our payment id, once created
    stripe_session: str = ""
    stripe_intent: str = ""


@dataclass
class Plan:
    """One customer's part of the scenario."""

    customer: str
    subscribe: bool = False
    quantity: int = 1
    subscription_disputed: bool = False
    packs: list[Pack] = field(default_factory=list)
    upgrade: dict[str, Any] | None = None
    refund: tuple[str, int | None] | None = None  # ("subscription" | "pack:<i>", amount or None = all)
    cancel_before_renewal: bool = False
    cancel_after_renewal: bool = False
    failing_renewal: bool = False
    refund_renewal: int | bool | None = False  # False: no; None: all; n: partial
    subscription_payment: str = ""


@dataclass(frozen=True)
class Step:
    kind: str
    customer: str = ""
    arg: Any = None
    note: str = ""  # the parameters, for the report

    def __str__(self) -> str:
        return " ".join(part for part in (self.kind, self.customer, self.note) if part)


@dataclass
class Scenario:
    seed: int
    plans: dict[str, Plan]
    steps: list[Step]
    redelivery: random.Random

    def describe(self) -> str:
        return "; ".join(str(step) for step in self.steps)


def _interleave(rng: random.Random, lists: list[list[Step]]) -> list[Step]:
    """Merges per-customer step lists in a random order, keeping each customer's own order."""
    queues = [list(steps) for steps in lists if steps]
    merged: list[Step] = []
    while queues:
        queue = rng.choice(queues)
        merged.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return merged


def plan_scenario(seed: int) -> Scenario:
    rng = random.Random(seed)
    plans: dict[str, Plan] = {}
    before: list[list[Step]] = []
    after: list[list[Step]] = []
    for number in range(rng.randint(1, 3)):
        plan = Plan(customer=f"s{seed}-user{number + 1}")
        plans[plan.customer] = plan
        purchases: list[Step] = []
        plan.subscribe = rng.random() < 0.85
        if plan.subscribe:
            plan.quantity = rng.choice((1, 1, 2, 3))
            plan.subscription_disputed = rng.random() < 0.2
            note = f"x{plan.quantity}" + (" card-disputed" if plan.subscription_disputed else "")
            purchases.append(Step("subscribe", plan.customer, note=note))
        for index in range(rng.choice((0, 1, 1, 2)) if plan.subscribe else rng.choice((1, 2))):
            pack = Pack(
                index=index,
                flow=rng.choice(("checkout", "intent")),
                quantity=rng.randint(1, 3),
                disputed=rng.random() < 0.25,
            )
            plan.packs.append(pack)
            note = f"#{index} {pack.flow} x{pack.quantity}" + (" card-disputed" if pack.disputed else "")
            purchases.append(Step("pack", plan.customer, index, note))
        rng.shuffle(purchases)
        steps = list(purchases)
        disputed = [f"pack:{p.index}" for p in plan.packs if p.disputed]
        if plan.subscription_disputed:
            disputed.append("subscription")
        for target in disputed:
            outcome = rng.choice(("won", "lost", "open"))
            if outcome != "open":
                steps.append(Step("resolve_dispute", plan.customer, (target, outcome), f"{target} {outcome}"))
        if plan.subscribe and rng.random() < 0.4:
            plan.upgrade = {"proration_behavior": rng.choice(("create_prorations", "always_invoice"))}
            change = rng.choice(("price", "quantity", "both"))
            if change in ("price", "both"):
                plan.upgrade["price"] = "pro-plus-monthly"
            if change in ("quantity", "both"):
                plan.upgrade["quantity"] = plan.quantity + rng.randint(1, 2)
            steps.append(Step("upgrade", plan.customer, note=json.dumps(plan.upgrade)))
        refundable = [f"pack:{p.index}" for p in plan.packs if not p.disputed]
        if plan.subscribe and not plan.subscription_disputed:
            refundable.append("subscription")
        if refundable and rng.random() < 0.45:
            target = rng.choice(refundable)
            plan.refund = (target, None if rng.random() < 0.5 else rng.randint(1, 999))
            amount = "all" if plan.refund[1] is None else str(plan.refund[1])
            steps.append(Step("refund", plan.customer, target, f"{target} {amount}"))
        if plan.subscribe and rng.random() < 0.25:
            plan.cancel_before_renewal = True
            steps.append(Step("cancel_at_period_end", plan.customer))
        if plan.subscribe and rng.random() < 0.35:
            plan.failing_renewal = True
            steps.append(Step("failing_card", plan.customer))
        before.append(steps)
    steps = _interleave(rng, before)
    if any(p.subscribe for p in plans.values()) and rng.random() < 0.75:
        steps.append(Step("renew"))
        for plan in plans.values():
            later: list[Step] = []
            renewed = plan.subscribe and not plan.cancel_before_renewal and not plan.failing_renewal
            if renewed and not plan.subscription_disputed and rng.random() < 0.3:
                plan.refund_renewal = None if rng.random() < 0.5 else rng.randint(1, 999)
                amount = "all" if plan.refund_renewal is None else str(plan.refund_renewal)
                later.append(Step("refund_renewal", plan.customer, note=amount))
            if renewed and rng.random() < 0.25:
                plan.cancel_after_renewal = True
                later.append(Step("cancel_at_period_end", plan.customer))
            after.append(later)
        steps += _interleave(rng, after)
        if (
            any(p.failing_renewal and not p.cancel_before_renewal for p in plans.values())
            and rng.random() < 0.5
        ):
            steps.append(Step("dunning"))
    return Scenario(seed=seed, plans=plans, steps=steps, redelivery=random.Random(seed * 7919 + 1))


# --- driving it --------------------------------------------------------------------------------------------------


class StepFailed(Exception):
    pass


class Driver:
    """Runs a scenario through Tollgate's API (project key) and the emulator's customer-side controls."""

    def __init__(
        self,
        *,
        api: Any,
        project: Any,
        key: str,
        emulator: Any,
        sdk: Any,
        clock: SharedClock,
        capture: Capture,
        intake: Intake,
        settle: Callable[[str], None],
    ) -> None:
        self.api = api
        self.project = project
        self.key = key
        self.emulator = emulator
        self.sdk = sdk
        self.clock = clock
        self.capture = capture
        self.intake = intake
        self.settle = settle
        self.delivered_upto = 0  # captured deliveries already sent in order during the scenario
        self.errors: list[str] = []

    # -- plumbing --

    def _call(self, method: str, path: str, body: Any = None, expect: Iterable[int] = (200, 201)) -> Any:
        response = self.api.request(method, path, key=self.key, json_body=body)
        if response.status_code not in tuple(expect):
            raise StepFailed(f"{method} {path} → {response.status_code} {response.content.decode()[:400]}")
        return response.json()

    def _control(self, path: str, form: dict[str, str]) -> Any:
        response = self.emulator.handle(
            "POST",
            path,
            body=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if response.status >= 400:
            raise StepFailed(f"POST {path} → {response.status} {response.body[:400]!r}")
        return json.loads(response.body)

    def sync(self) -> None:
        """Delivers every event captured so far, in Stripe's order, once, and lets the workers apply them: the
        next API call needs the local mirror (they are delivered again, shuffled, at the end)."""
        self.capture.collect()
        for delivery in self.capture.deliveries[self.delivered_upto :]:
            self.intake.deliver(delivery)
        self.delivered_upto = len(self.capture.deliveries)
        self.settle("scenario sync")

    def run(self, scenario: Scenario) -> None:
        for step in scenario.steps:
            try:
                getattr(self, f"step_{step.kind}")(scenario.plans.get(step.customer), step)
            except StepFailed as exc:  # Tollgate refused or lacked what the step needs: reported, not fatal
                self.errors.append(f"{step}: {exc}")
            self.capture.collect()

    # -- purchases --

    def step_subscribe(self, plan: Plan, step: Step) -> None:
        created = self._call(
            "POST",
            "/api/v1/checkout/subscription",
            {
                "customer": plan.customer,
                "price": "pro-monthly",
                "quantity": plan.quantity,
                "success_url": OK_URL,
                "cancel_url": OK_URL,
            },
        )
        plan.subscription_payment = created["payment"]
        card = CARD_DISPUTED if plan.subscription_disputed else CARD_OK
        self._control(f"/_emulator/checkout/sessions/{created['stripe_session_id']}/complete", {"card": card})

    def step_pack(self, plan: Plan, step: Step) -> None:
        pack = plan.packs[step.arg]
        created = self._call(
            "POST",
            "/api/v1/payments",
            {
                "customer": plan.customer,
                "items": [{"price": "credits-1000", "quantity": pack.quantity}],
                "flow": pack.flow,
                "success_url": OK_URL,
                "cancel_url": OK_URL,
            },
        )
        pack.payment = created["id"]
        if pack.flow == "checkout":
            pack.stripe_session = created["stripe_checkout_session_id"]
            card = CARD_DISPUTED if pack.disputed else CARD_OK
            self._control(f"/_emulator/checkout/sessions/{pack.stripe_session}/complete", {"card": card})
        else:
            pack.stripe_intent = created["stripe_payment_intent_id"]
            self.sdk.v1.payment_intents.confirm(
                pack.stripe_intent, {"payment_method": PM_DISPUTED if pack.disputed else PM_OK}
            )

    def _stripe_intent_of(self, plan: Plan, target: str) -> str:
        if target.startswith("pack:"):
            pack = plan.packs[int(target.split(":")[1])]
            if pack.stripe_intent:
                return pack.stripe_intent
            session = _dict(self.sdk.v1.checkout.sessions.retrieve(pack.stripe_session))
            return _sid(session.get("payment_intent"))
        subscription = self._stripe_subscription(plan)
        first = [
            invoice["id"]
            for invoice in _all(self.sdk.v1.invoices.list, {"subscription": subscription["id"]})
            if invoice.get("billing_reason") == "subscription_create"
        ]
        if not first:
            raise StepFailed(f"no first invoice at Stripe for {subscription['id']}")
        return invoice_intent(self.sdk, first[0])

    def _stripe_subscription(self, plan: Plan) -> dict[str, Any]:
        customer = Customer.objects.get(project=self.project, external_id=plan.customer)
        found = _all(
            self.sdk.v1.subscriptions.list, {"customer": customer.stripe_customer_id, "status": "all"}
        )
        if not found:
            raise StepFailed(f"no Stripe subscription for {plan.customer}")
        return found[0]

    def step_resolve_dispute(self, plan: Plan, step: Step) -> None:
        target, outcome = step.arg
        intent = self._stripe_intent_of(plan, target)
        disputes = [d for d in _all(self.sdk.v1.disputes.list, {}) if _sid(d.get("payment_intent")) == intent]
        if not disputes:
            raise StepFailed(f"no dispute at Stripe for {target} ({intent})")
        self._control(f"/_emulator/disputes/{disputes[-1]['id']}/resolve", {"outcome": outcome})

    # -- changes that need the local mirror --

    def _local_subscription(self, plan: Plan) -> str:
        listed = self._call("GET", f"/api/v1/subscriptions?customer={plan.customer}")
        live = [s for s in listed["data"] if s["status"] not in ("canceled", "incomplete_expired")]
        if not live:
            raise StepFailed(f"no local subscription for {plan.customer} after the events so far: {listed}")
        return str(live[0]["id"])

    def step_upgrade(self, plan: Plan, step: Step) -> None:
        self.sync()
        subscription = self._local_subscription(plan)
        self._call("PATCH", f"/api/v1/subscriptions/{subscription}", plan.upgrade)

    def step_refund(self, plan: Plan, step: Step) -> None:
        self.sync()
        assert plan.refund is not None
        target, amount = plan.refund
        payment = (
            plan.packs[int(target.split(":")[1])].payment
            if target.startswith("pack:")
            else plan.subscription_payment
        )
        self._refund(payment, amount)

    def _refund(self, payment: str, amount: int | None) -> None:
        body: dict[str, Any] = {"reason": "requested_by_customer"}
        if amount is not None:
            body["amount"] = amount
        self._call("POST", f"/api/v1/payments/{payment}/refund", body)

    def step_refund_renewal(self, plan: Plan, step: Step) -> None:
        self.sync()
        invoice = _sid(self._stripe_subscription(plan).get("latest_invoice"))
        payment = (
            Payment.objects.filter(project=self.project, stripe_invoice_id=invoice)
            .values_list("pk", flat=True)
            .first()
        )
        if payment is None:
            raise StepFailed(f"no local payment for the renewal invoice {invoice}")
        self._refund(payment, None if plan.refund_renewal is None else int(plan.refund_renewal))

    def step_cancel_at_period_end(self, plan: Plan, step: Step) -> None:
        self.sync()
        subscription = self._local_subscription(plan)
        self._call("POST", f"/api/v1/subscriptions/{subscription}/cancel", {"at_period_end": True})

    # -- the customer's card and time --

    def step_failing_card(self, plan: Plan, step: Step) -> None:
        subscription = self._stripe_subscription(plan)
        customer = _sid(subscription["customer"])
        card = self.sdk.v1.payment_methods.create(
            {
                "type": "card",
                "card": {"number": CARD_FAILS_WHEN_CHARGED, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
            }
        )
        self.sdk.v1.payment_methods.attach(card.id, {"customer": customer})
        self.sdk.v1.customers.update(customer, {"invoice_settings": {"default_payment_method": card.id}})
        # A subscription's own default method wins over the customer's: point it at the failing card too.
        self.sdk.v1.subscriptions.update(subscription["id"], {"default_payment_method": card.id})

    def _advance(self, seconds: int) -> None:
        self.settle("before moving time")  # the workers' clocks move only while they are idle
        self.emulator.advance(seconds)
        self.clock.set(self.emulator.clock.offset)

    def step_renew(self, plan: Plan | None, step: Step) -> None:
        """To one day after the latest period end: every subscription renews (or fails to) once."""
        ends = [
            int(item["current_period_end"])
            for subscription in _all(self.sdk.v1.subscriptions.list, {"status": "all"})
            if subscription["status"] not in ("canceled", "incomplete_expired")
            for item in subscription["items"]["data"]
        ]
        now = self.emulator.clock.now()
        self._advance(max([now, *ends]) - now + DAY)

    def step_dunning(self, plan: Plan | None, step: Step) -> None:
        """Past the last Smart Retry (5 days after the first failure): failing subscriptions end."""
        self._advance(5 * DAY + 3600)


# --- delivery and repair -----------------------------------------------------------------------------------------


def redeliver(
    scenario: Scenario, capture: Capture, intake: Intake, *, delivered_before: int
) -> list[tuple[str, int]]:
    """Every captured event 0–3 times (0: dropped), all in one shuffled order. Returns (event, times in all),
    counting the in-order delivery during the scenario of the first `delivered_before` ones."""
    rng = scenario.redelivery
    plan = [(delivery, rng.randint(0, 3)) for delivery in capture.deliveries]
    sends = [delivery for delivery, times in plan for _ in range(times)]
    rng.shuffle(sends)
    for delivery in sends:
        intake.deliver(delivery)
    return [
        (delivery.label(), times + int(index < delivered_before))
        for index, (delivery, times) in enumerate(plan)
    ]


def lose_outcomes(scenario: Scenario, settle: Callable[[str], None]) -> int:
    """Events whose effects committed but whose outcome was lost — their worker died before recording it, or a
    database crash dropped the newest bookkeeping (committed without a flush) — read `processing` again; the
    sweep hands them to the workers, which apply them a second time after everything that came later. A third
    of the applied events, chosen by the seed. Returns how many."""
    from webhooks.services.process import stripe_events_requeue_due

    rng = random.Random(scenario.seed * 104_729 + 3)
    applied = list(
        StripeEvent.objects.filter(status=StripeEvent.Status.PROCESSED)
        .order_by("stripe_created", "received_at")
        .values_list("pk", flat=True)
    )
    lost = [pk for pk in applied if rng.random() < 1 / 3]
    StripeEvent.objects.filter(pk__in=lost).update(
        status=StripeEvent.Status.PROCESSING, processing_started_at=timezone.now() - timedelta(minutes=10)
    )
    stripe_events_requeue_due()
    settle("after applying events whose outcome was lost")
    return len(lost)


def repair(*, since: datetime, settle: Callable[[str], None]) -> str:
    """The tools docs/operations.md prescribes after an outage, in its order. Returns their output."""
    output = io.StringIO()
    call_command(
        "replay_webhooks", "--fetch-missing", "--since", since.isoformat(), stdout=output, stderr=output
    )
    settle("after replay_webhooks --fetch-missing")
    try:
        call_command("reconcile", "--fix", stdout=output, stderr=output)
    except CommandError as exc:  # drift left unfixed: the comparison below says which
        output.write(f"reconcile: CommandError: {exc}\n")
    settle("after reconcile --fix")
    return output.getvalue()


# --- Stripe's truth ----------------------------------------------------------------------------------------------


def _sid(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return str(value.get("id") or "")


def _dict(obj: Any) -> dict[str, Any]:
    result: dict[str, Any] = obj.to_dict(for_json=True) if hasattr(obj, "to_dict") else dict(obj)
    return result


def _all(list_call: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [_dict(item) for item in list_call({**params, "limit": 100}).auto_paging_iter()]


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def invoice_intent(sdk: Any, invoice_id: str) -> str:
    """The PaymentIntent of an invoice: the one that paid it, else the latest attempt's."""
    records = _all(sdk.v1.invoice_payments.list, {"invoice": invoice_id})
    paid = [r for r in records if r.get("status") == "paid"]
    for record in paid + records:
        intent = _sid((record.get("payment") or {}).get("payment_intent"))
        if intent:
            return intent
    return ""


def _invoice_subscription(invoice: dict[str, Any]) -> str:
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return _sid(details.get("subscription"))


@dataclass(frozen=True)
class Mismatch:
    object: str
    field: str
    local: Any
    stripe: Any

    def row(self) -> str:
        return f"  {self.object:<44} {self.field:<26} local={self.local!r:<28} stripe={self.stripe!r}"


class Truth:
    """Stripe's state of the scenario's customers, read through the official SDK."""

    def __init__(self, sdk: Any, stripe_customers: list[str]) -> None:
        self.sdk = sdk
        self.now = 0
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.by_customer_subscriptions: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.by_customer_invoices: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for customer in stripe_customers:
            for subscription in _all(sdk.v1.subscriptions.list, {"customer": customer, "status": "all"}):
                self.subscriptions[subscription["id"]] = subscription
                self.by_customer_subscriptions[customer].append(subscription)
            for invoice in _all(sdk.v1.invoices.list, {"customer": customer}):
                self.invoices[invoice["id"]] = invoice
                self.by_customer_invoices[customer].append(invoice)
        self.disputes: dict[str, dict[str, Any]] = {}
        for dispute in sorted(_all(sdk.v1.disputes.list, {}), key=lambda d: d["created"]):
            self.disputes[_sid(dispute.get("payment_intent"))] = dispute  # the newest per intent
        self._intents: dict[str, dict[str, Any]] = {}
        self._charges: dict[str, dict[str, Any]] = {}
        self._invoice_intents: dict[str, str] = {}
        self._sessions: dict[str, dict[str, Any]] = {}

    def intent(self, intent_id: str) -> dict[str, Any]:
        if intent_id not in self._intents:
            self._intents[intent_id] = _dict(self.sdk.v1.payment_intents.retrieve(intent_id))
        return self._intents[intent_id]

    def charge_of(self, intent_id: str) -> dict[str, Any] | None:
        charge_id = _sid(self.intent(intent_id).get("latest_charge"))
        if not charge_id:
            return None
        if charge_id not in self._charges:
            self._charges[charge_id] = _dict(self.sdk.v1.charges.retrieve(charge_id))
        return self._charges[charge_id]

    def invoice_intent(self, invoice_id: str) -> str:
        if invoice_id not in self._invoice_intents:
            self._invoice_intents[invoice_id] = invoice_intent(self.sdk, invoice_id)
        return self._invoice_intents[invoice_id]

    def session(self, session_id: str) -> dict[str, Any]:
        if session_id not in self._sessions:
            self._sessions[session_id] = _dict(self.sdk.v1.checkout.sessions.retrieve(session_id))
        return self._sessions[session_id]

    def money_kept(self, intent_id: str) -> bool:
        """Paid, not refunded in full, and not lost to a dispute."""
        if not intent_id or self.intent(intent_id)["status"] != "succeeded":
            return False
        charge = self.charge_of(intent_id) or {}
        if charge.get("refunded"):
            return False
        dispute = self.disputes.get(intent_id)
        return not (dispute is not None and dispute["status"] == "lost")

    def payment_status(self, intent_id: str) -> str:
        """The status API.md gives a payment in the state Stripe holds for its PaymentIntent."""
        intent = self.intent(intent_id)
        status = intent["status"]
        if status == "succeeded":
            dispute = self.disputes.get(intent_id)
            if dispute is not None and dispute["status"] not in DISPUTE_KEEPS_MONEY:
                return "disputed"
            charge = self.charge_of(intent_id) or {}
            if charge.get("refunded"):
                return "refunded"
            if int(charge.get("amount_refunded") or 0):
                return "partially_refunded"
            return "succeeded"
        if status == "requires_payment_method":
            return "requires_payment_method" if intent.get("last_payment_error") else "pending"
        return {"canceled": "canceled", "requires_action": "requires_action", "processing": "processing"}.get(
            status, "pending"
        )


# --- the comparison ----------------------------------------------------------------------------------------------


def tie_out_differences(*, project: Any) -> list[tuple[str, str, Any, Any]]:
    """The project's money tied out with Stripe's balance transactions (`billing.services.tie_out`), all time:
    every movement Tollgate holds (paid charges, refunds and their failures, disputes) against what Stripe
    counted for it, read now from Stripe, and the totals per currency of both sides."""
    from billing.services.reconciliation_reader import _Reader
    from billing.services.tie_out import balance_sync, tie_out
    from stripe_gateway.gateway import gateway_for, stripe_account_of

    balance_sync(_Reader(stripe_account_of(project), gateway_for(project)), [project])
    ever = datetime(1970, 1, 1, tzinfo=UTC)
    differences: list[tuple[str, str, Any, Any]] = []
    for currency, result in tie_out(project, start=ever, end=timezone.now() + timedelta(days=3650)).items():
        for d in result.compared:  # each movement, equal or not (the comparison counts them)
            differences.append((f"tie-out {currency} {d.source}", d.category, d.tollgate, d.stripe))
        for name, held in result.tollgate.items():
            differences.append((f"tie-out {currency}", name, held, result.stripe[name]))
    return differences


def journal_differences(*, project: Any) -> list[tuple[str, str, Any, Any]]:
    """The double-entry journal (billing.services.journal), after `tie_out_differences` read Stripe's balance
    transactions: every entry balanced, nothing left for the repair to post (each movement posted exactly what its
    row holds, once, whatever the events did), and the cash account equal to Stripe's net per currency."""
    from billing.models import BalanceTransaction, Drift, JournalLine
    from billing.services.journal import journal_repair

    differences: list[tuple[str, str, Any, Any]] = []
    by_entry: dict[str, int] = defaultdict(int)
    cash: dict[str, int] = defaultdict(int)
    for entry, currency, account, amount in JournalLine.objects.filter(entry__project=project).values_list(
        "entry_id", "entry__currency", "account", "amount"
    ):
        by_entry[entry] += amount
        if account == "stripe_balance":
            cash[currency] += amount
    for entry, total in sorted(by_entry.items()):
        differences.append((f"journal {entry}", "lines add up to", total, 0))
    net: dict[str, int] = defaultdict(int)
    for currency, amount in BalanceTransaction.objects.filter(project=project).values_list("currency", "net"):
        net[currency] += amount
    for currency in sorted(set(cash) | set(net)):
        differences.append((f"journal {currency}", "cash at Stripe", cash[currency], net[currency]))
    # What a reconciliation had to post (drift of a `journal` movement) or a repair now would: a writer missed it.
    repaired = Drift.objects.filter(project=project, object_type="journal").count()
    differences.append(
        ("journal", "movements a repair had to post", repaired + len(journal_repair(project.pk)), 0)
    )
    return differences


def recognition_differences(*, project: Any) -> list[tuple[str, str, Any, Any]]:
    """Revenue recognition (billing.services.recognition) over all time, per currency: what the report says was
    billed equal to the paid invoices' and one-off payments' revenue (tax aside) summed from the mirror; given back
    no more than billed; each month's deferred revenue and prepaid credits' liability moving as opening + added −
    recognised = closing, the next month opening where it closed; nothing left deferred once every period has
    ended, so that what was billed less given back is recognised or still owed in credits; a second sync writing
    nothing."""
    from billing.models import Invoice, Payment, RevenueSchedule
    from billing.services.recognition import recognition_sync
    from billing.services.revenue_report import next_month, revenue_months

    recognition_sync(project)
    differences: list[tuple[str, str, Any, Any]] = [
        ("recognition", "rows a second sync writes", recognition_sync(project), 0)
    ]
    billed: dict[str, int] = defaultdict(int)
    paid = Invoice.objects.filter(project=project, status="paid", total__gt=0)
    for currency, total, tax in paid.values_list("currency", "total", "tax"):
        billed[currency] += total - tax
    one_off = Payment.objects.filter(
        project=project,
        status__in=Payment.PAID_STATUSES,
        amount__gt=0,
        succeeded_at__isnull=False,
        stripe_invoice_id="",
    ).exclude(type=Payment.Type.SUBSCRIPTION)
    for currency, amount, tax in one_off.values_list("currency", "amount", "amount_tax"):
        billed[currency] += amount - tax
    days = list(RevenueSchedule.objects.filter(project=project).values_list("booked_on", "end_day"))
    if not days:
        differences.append(("recognition", "billed", {}, {c: a for c, a in billed.items() if a}))
        return differences
    first = min(booked for booked, _ in days)
    last = max(max(booked, end) for booked, end in days)
    reported: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    closing: dict[tuple[str, str], int] = defaultdict(int)  # (currency, balance) → the last month's closing
    for month in revenue_months(project, first, next_month(last.replace(day=1)), sync=False):
        seen = set()
        for row in month.currencies:
            seen.add(row.currency)
            where = f"recognition {row.currency} {month.month:%Y-%m}"
            for name in ("billed", "refunds", "recognised"):
                reported[row.currency][name] += getattr(row, name)
            for balance in ("deferred", "credits"):
                opening, added, recognised, closed = (
                    getattr(row, f"{balance}_{name}")
                    for name in ("opening", "added", "recognised", "closing")
                )
                differences.append(
                    (where, f"{balance} opening + added - recognised", opening + added - recognised, closed)
                )
                differences.append((where, f"{balance} opening", opening, closing[(row.currency, balance)]))
                closing[(row.currency, balance)] = closed
        for currency, balance in list(closing):
            if currency not in seen:
                differences.append(
                    (
                        f"recognition {currency} {month.month:%Y-%m}",
                        f"{balance} held",
                        closing[(currency, balance)],
                        0,
                    )
                )
    for currency in sorted(set(billed) | set(reported)):
        figures = reported[currency]
        differences.append((f"recognition {currency}", "billed", figures["billed"], billed[currency]))
        differences.append(
            (
                f"recognition {currency}",
                "given back within billed",
                figures["refunds"] <= figures["billed"],
                True,
            )
        )
        differences.append(
            (
                f"recognition {currency}",
                "recognised + prepaid credits left",
                figures["recognised"] + closing[(currency, "credits")],
                figures["billed"] - figures["refunds"],
            )
        )
        differences.append(
            (f"recognition {currency}", "deferred at the end", closing[(currency, "deferred")], 0)
        )
    return differences


def figures_differences(*, project: Any, api: Any, key: str) -> list[tuple[str, str, Any, Any]]:
    """The revenue figures kept as the events arrived (billing.models.revenue) against the rows they count:
    `GET /metrics/revenue` (revenue, refunds, MRR) equal to sums over the project's payments, refunds and live
    subscriptions, before and after the journal is folded, and no row that the repair would count again."""
    from billing.models import Figure, Payment, Refund, Subscription
    from billing.selectors import revenue_figures
    from billing.services.revenue_figures import (
        MRR_STATUSES,
        revenue_figures_repair,
        revenue_fold,
        subscription_monthly_amount,
    )

    start = (timezone.now() - timedelta(days=400)).isoformat()
    end = (timezone.now() + timedelta(days=400)).isoformat()

    def read() -> dict[str, Any]:
        body = api.get(f"/api/v1/metrics/revenue?from={quote(start)}&to={quote(end)}", key=key).json()
        sums: dict[str, Counter[str]] = defaultdict(Counter)
        for row in body["data"]:
            sums[row["currency"]]["revenue"] += row["revenue"]
            sums[row["currency"]]["refunds"] += row["refunds"]
        return {"sums": {c: dict(s) for c, s in sums.items()}, "mrr": body["mrr"]}

    rows: dict[str, Counter[str]] = defaultdict(Counter)
    for payment in Payment.objects.filter(project=project, status__in=Payment.PAID_STATUSES):
        rows[payment.currency]["revenue"] += payment.amount
    for refund in Refund.objects.filter(project=project, status__in=Refund.COUNTED_STATUSES).exclude(
        stripe_refund_id=""
    ):
        rows[refund.currency]["refunds"] += refund.amount
    mrr: dict[str, Decimal] = defaultdict(Decimal)
    for subscription in (
        Subscription.objects.filter(project=project, status__in=MRR_STATUSES)
        .select_related("price")
        .prefetch_related("items__price")
    ):
        mrr[subscription.price.currency] += subscription_monthly_amount(subscription)
    expected = {
        "sums": {c: {"revenue": s["revenue"], "refunds": s["refunds"]} for c, s in rows.items()},
        "mrr": {c: int(a.quantize(Decimal(1), rounding=ROUND_HALF_UP)) for c, a in sorted(mrr.items()) if a},
    }
    live = Subscription.objects.filter(project=project, status__in=MRR_STATUSES).count()

    def active() -> int:
        return sum(revenue_figures(project=project, figures=(Figure.ACTIVE,)).values())

    journaled, journaled_active = read(), active()
    while revenue_fold():
        pass
    folded = read()
    return [
        ("metrics/revenue", "journal and totals", journaled, expected),
        ("metrics/revenue", "after the fold", folded, expected),
        ("figures", "live subscriptions, journal and totals", journaled_active, live),
        ("figures", "live subscriptions after the fold", active(), live),
        (
            "metrics/revenue",
            "rows the repair counted again",
            revenue_figures_repair(project_id=project.pk),
            0,
        ),
    ]


class Comparison:
    def __init__(self, *, project: Any, truth: Truth, api: Any, key: str, scenario: Scenario) -> None:
        self.project = project
        self.truth = truth
        self.api = api
        self.key = key
        self.scenario = scenario
        self.mismatches: list[Mismatch] = []
        self.checked: Counter[str] = Counter()

    def differ(self, obj: str, name: str, local: Any, stripe: Any) -> None:
        self.checked[obj.split(" ", 1)[0]] += 1
        if local != stripe:
            self.mismatches.append(Mismatch(obj, name, local, stripe))

    def run(self, *, pro_product: str, credit_price_amount: int) -> list[Mismatch]:
        self.subscriptions()
        self.invoices()
        self.payments()
        self.customers(pro_product=pro_product, credit_price_amount=credit_price_amount)
        self.outbound_events_once()
        self.credit_grants_once()
        self.inbox()
        for obj, name, local, expected in figures_differences(
            project=self.project, api=self.api, key=self.key
        ):
            self.differ(obj, name, local, expected)
        for obj, name, local, expected in tie_out_differences(project=self.project):
            self.differ(obj, name, local, expected)
        for obj, name, local, expected in journal_differences(project=self.project):
            self.differ(obj, name, local, expected)
        for obj, name, local, expected in recognition_differences(project=self.project):
            self.differ(obj, name, local, expected)
        return self.mismatches

    # -- subscriptions --

    def subscriptions(self) -> None:
        local = {
            s.stripe_subscription_id: s
            for s in Subscription.objects.filter(project=self.project).select_related("price")
        }
        for stripe_id, stripe_subscription in self.truth.subscriptions.items():
            name = f"subscription {stripe_id}"
            mirror = local.pop(stripe_id, None)
            if mirror is None:
                self.differ(name, "(row)", "missing", stripe_subscription["status"])
                continue
            item = stripe_subscription["items"]["data"][0]
            stripe_price = _sid(item.get("price"))
            self.differ(name, "status", mirror.status, stripe_subscription["status"])
            self.differ(name, "stripe_price_id", mirror.stripe_price_id, stripe_price)
            price_ids = [mirror.price.stripe_price_id, *(mirror.price.stripe_price_history or [])]
            self.differ(
                name,
                "price",
                mirror.price.key,
                mirror.price.key if stripe_price in price_ids else stripe_price,
            )
            self.differ(name, "quantity", mirror.quantity, int(item.get("quantity") or 1))
            self.differ(
                name,
                "cancel_at_period_end",
                mirror.cancel_at_period_end,
                bool(stripe_subscription.get("cancel_at_period_end")),
            )
            self.differ(
                name, "current_period_start", mirror.current_period_start, _ts(item["current_period_start"])
            )
            self.differ(
                name, "current_period_end", mirror.current_period_end, _ts(item["current_period_end"])
            )
        for stripe_id, mirror in local.items():
            self.differ(f"subscription {stripe_id}", "(row)", mirror.status, "missing at Stripe")

    # -- invoices --

    def invoices(self) -> None:
        local = {
            i.stripe_invoice_id: i
            for i in Invoice.objects.filter(project=self.project).select_related("subscription")
        }
        for stripe_id, stripe_invoice in self.truth.invoices.items():
            name = f"invoice {stripe_id} ({stripe_invoice.get('billing_reason')})"
            mirror = local.pop(stripe_id, None)
            if mirror is None:
                self.differ(name, "(row)", "missing", stripe_invoice["status"])
                continue
            self.differ(name, "status", mirror.status, stripe_invoice["status"])
            for amount in ("subtotal", "total", "amount_due", "amount_paid", "amount_remaining"):
                self.differ(name, amount, getattr(mirror, amount), int(stripe_invoice.get(amount) or 0))
            self.differ(name, "number", mirror.number, stripe_invoice.get("number") or "")
            linked = mirror.subscription.stripe_subscription_id if mirror.subscription else ""
            self.differ(name, "subscription", linked, _invoice_subscription(stripe_invoice))
            if hasattr(mirror, "stripe_subscription_id"):
                self.differ(
                    name,
                    "stripe_subscription_id",
                    mirror.stripe_subscription_id,
                    _invoice_subscription(stripe_invoice),
                )
        for stripe_id, mirror in local.items():
            self.differ(f"invoice {stripe_id}", "(row)", mirror.status, "missing at Stripe")

    # -- payments --

    def _expected_for_invoice(self, invoice_id: str) -> dict[str, Any]:
        invoice = self.truth.invoices.get(invoice_id)
        if invoice is None:
            invoice = _dict(self.truth.sdk.v1.invoices.retrieve(invoice_id))
        intent = self.truth.invoice_intent(invoice_id)
        if invoice["status"] == "paid" and not int(invoice.get("amount_paid") or 0):
            status = "no_payment_required"
        elif intent:
            status = self.truth.payment_status(intent)
        else:
            status = "pending"
        charge = self.truth.charge_of(intent) if intent else None
        dispute = self.truth.disputes.get(intent) if intent else None
        return {
            "status": status,
            "amount": int(invoice.get("amount_due") or 0),
            "amount_refunded": int((charge or {}).get("amount_refunded") or 0),
            "stripe_payment_intent_id": intent,
            "stripe_invoice_id": invoice_id,
            "stripe_subscription_id": _invoice_subscription(invoice),
            "dispute_status": dispute["status"] if dispute else "",
        }

    def _expected_for_intent(self, intent_id: str, **links: str) -> dict[str, Any]:
        intent = self.truth.intent(intent_id)
        charge = self.truth.charge_of(intent_id)
        dispute = self.truth.disputes.get(intent_id)
        return {
            "status": self.truth.payment_status(intent_id),
            "amount": int(intent["amount"]),
            "amount_refunded": int((charge or {}).get("amount_refunded") or 0),
            "stripe_payment_intent_id": intent_id,
            "stripe_invoice_id": links.get("invoice", ""),
            "stripe_subscription_id": links.get("subscription", ""),
            "dispute_status": dispute["status"] if dispute else "",
        }

    def _expected_payment(self, payment: Payment) -> dict[str, Any] | None:
        if payment.stripe_checkout_session_id:
            session = self.truth.session(payment.stripe_checkout_session_id)
            if session["mode"] == "subscription":
                invoice = _sid(session.get("invoice"))
                if invoice:
                    return self._expected_for_invoice(invoice)
            elif _sid(session.get("payment_intent")):
                expected = self._expected_for_intent(_sid(session["payment_intent"]))
                expected["amount"] = int(session.get("amount_total") or 0)
                return expected
            status = {"open": "pending", "expired": "expired"}.get(session["status"], "processing")
            return {"status": status, "stripe_invoice_id": "", "stripe_subscription_id": ""}
        if payment.stripe_invoice_id:
            return self._expected_for_invoice(payment.stripe_invoice_id)
        if payment.stripe_payment_intent_id:
            return self._expected_for_intent(payment.stripe_payment_intent_id)
        return None

    def payments(self) -> None:
        payments = list(Payment.objects.filter(project=self.project).order_by("created_at"))
        for payment in payments:
            expected = self._expected_payment(payment)
            if expected is None:
                continue
            name = f"payment {payment.pk} ({payment.source}, {payment.type})"
            for attribute, value in expected.items():
                self.differ(name, attribute, getattr(payment, attribute), value)
        # Nothing missing, nothing twice: one payment per invoice that was paid or attempted, per intent.
        by_invoice = Counter(p.stripe_invoice_id for p in payments if p.stripe_invoice_id)
        for stripe_id, invoice in self.truth.invoices.items():
            if (invoice["status"] == "paid" or invoice.get("attempted")) and not by_invoice.get(stripe_id):
                self.differ(
                    f"invoice {stripe_id} ({invoice.get('billing_reason')})",
                    "payment",
                    "missing",
                    invoice["status"],
                )
        for name, counted in (
            ("stripe_payment_intent_id", Counter(p.stripe_payment_intent_id for p in payments)),
            ("stripe_checkout_session_id", Counter(p.stripe_checkout_session_id for p in payments)),
        ):
            for stripe_id, count in counted.items():
                if stripe_id and count > 1:
                    self.differ(f"payments of {stripe_id}", name, f"{count} payments", "1 payment")

    # -- credits and entitlements, per customer --

    def _expected_credits(self, plan: Plan, stripe_customer: str, *, pro_product: str, unit: int) -> int:
        credits = 0
        for pack in plan.packs:
            intent = pack.stripe_intent or (
                _sid(self.truth.session(pack.stripe_session).get("payment_intent"))
                if pack.stripe_session
                else ""
            )
            if intent and self.truth.money_kept(intent):
                credits += PACK_CREDITS * (int(self.truth.intent(intent)["amount"]) // unit)
        now = self.truth.now
        for subscription in self.truth.by_customer_subscriptions.get(stripe_customer, []):
            if _sid(subscription["items"]["data"][0]["price"].get("product")) != pro_product:
                continue
            for invoice in self.truth.by_customer_invoices.get(stripe_customer, []):
                if _invoice_subscription(invoice) != subscription["id"]:
                    continue
                if invoice.get("billing_reason") not in PERIOD_START_REASONS or invoice["status"] != "paid":
                    continue
                if int(invoice.get("amount_paid") or 0) and not self.truth.money_kept(
                    self.truth.invoice_intent(invoice["id"])
                ):
                    continue
                periods = [
                    line["period"]
                    for line in (invoice.get("lines") or {}).get("data") or []
                    if not ((line.get("parent") or {}).get("subscription_item_details") or {}).get(
                        "proration"
                    )
                ]
                if any(int(p["start"]) <= now < int(p["end"]) for p in periods[:1]):
                    credits += PLAN_CREDITS
        return credits

    def _access(self, stripe_customer: str, pro_product: str) -> tuple[bool, int]:
        """Whether Stripe's subscriptions give the `pro` product now (API.md statuses, the default grace)."""
        now = self.truth.now
        for subscription in self.truth.by_customer_subscriptions.get(stripe_customer, []):
            item = subscription["items"]["data"][0]
            if _sid(item["price"].get("product")) != pro_product:
                continue
            status = subscription["status"]
            on = status in ("active", "trialing") or (
                status == "past_due"
                and now < int(item["current_period_start"]) + PAST_DUE_GRACE.total_seconds()
            )
            if on:
                return True, int(item.get("quantity") or 1)
        return False, 0

    def customers(self, *, pro_product: str, credit_price_amount: int) -> None:
        for plan in self.scenario.plans.values():
            customer = Customer.objects.filter(project=self.project, external_id=plan.customer).first()
            if customer is None or not customer.stripe_customer_id:
                self.differ(f"customer {plan.customer}", "stripe_customer_id", None, "a Stripe customer")
                continue
            stripe_customer = customer.stripe_customer_id
            name = f"customer {plan.customer}"
            expected_credits = self._expected_credits(
                plan, stripe_customer, pro_product=pro_product, unit=credit_price_amount
            )
            credits = self.api.get(
                f"/api/v1/credits?customer={plan.customer}&feature={CREDITS_FEATURE}", key=self.key
            ).json()
            self.differ(name, "credits balance", credits.get("balance"), expected_credits)
            on, quantity = self._access(stripe_customer, pro_product)
            answer = self.api.get(f"/api/v1/entitlements?customer={plan.customer}", key=self.key).json()
            entries = {e["feature"]: e for e in answer.get("entitlements", [])}
            access = entries.get(ACCESS_FEATURE, {})
            self.differ(name, f"{ACCESS_FEATURE}.enabled", access.get("enabled"), on)
            products = sorted(
                s.get("product") for s in access.get("sources", []) if s.get("type") == "subscription"
            )
            self.differ(name, f"{ACCESS_FEATURE}.sources", products, ["pro"] if on else [])
            seats = entries.get(SEATS_FEATURE, {})
            self.differ(name, f"{SEATS_FEATURE}.limit", seats.get("limit"), quantity)
            self.differ(name, f"{SEATS_FEATURE}.enabled", seats.get("enabled"), quantity > 0)
            self.differ(
                name,
                f"{CREDITS_FEATURE}.balance",
                entries.get(CREDITS_FEATURE, {}).get("balance"),
                expected_credits,
            )

    # -- nothing twice --

    def outbound_events_once(self) -> None:
        """No two tenant events of one type for the same object and the same transition."""
        stripe_failures: Counter[str] = Counter()
        for stripe_event in _all(self.truth.sdk.v1.events.list, {"type": "invoice.payment_failed"}):
            stripe_failures[_sid(stripe_event["data"]["object"])] += 1
        invoices = dict(Invoice.objects.filter(project=self.project).values_list("pk", "stripe_invoice_id"))
        seen: dict[tuple[Any, ...], list[str]] = defaultdict(list)
        timelines: dict[str, list[str]] = defaultdict(list)
        failures: Counter[str] = Counter()
        for event in Event.objects.filter(project=self.project).order_by("sequence"):
            self.checked["tenant-event"] += 1
            obj = (event.data or {}).get("object") or {}
            previous = json.dumps(event.previous_attributes, sort_keys=True, default=str)
            timelines[str(obj.get("id"))].append(
                f"#{event.sequence} {event.type} status={obj.get('status')} previous={previous}"
            )
            if event.type == "entitlements.updated":
                continue  # announces a digest change; A → B → A is legitimate
            if event.type == "invoice.payment_failed":
                failures[str(invoices.get(str(obj.get("id")), obj.get("id")))] += 1
                continue
            if event.type in ONCE_PER_OBJECT:
                key: tuple[Any, ...] = (event.type, obj.get("id"))
            elif event.type.startswith("payment."):  # succeeded again after a won dispute: from `disputed`
                key = (event.type, obj.get("id"), previous)
            else:
                key = (event.type, obj.get("id"), previous, *(str(obj.get(f)) for f in TRANSITION_FIELDS))
            seen[key].append(f"#{event.sequence} status={obj.get('status')} previous={previous}")
        for key, found in seen.items():
            if len(found) > 1:
                self.differ(
                    f"tenant events {key[0]}",
                    str(key[1]),
                    f"{len(found)}; all events of {key[1]}: {' | '.join(timelines[str(key[1])])}"
                    f"; Stripe events applied: {' | '.join(self._inbox_timeline(str(key[1])))}",
                    1,
                )
        for stripe_invoice, count in failures.items():
            if count > stripe_failures.get(stripe_invoice, 0):
                self.differ(
                    "tenant events invoice.payment_failed",
                    str(stripe_invoice),
                    count,
                    f"≤ {stripe_failures.get(stripe_invoice, 0)} (Stripe's failed attempts)",
                )

    def _inbox_timeline(self, local_id: str) -> list[str]:
        """The Stripe events about the object behind one of our ids, in the order the workers finished them."""
        stripe_id = (
            Subscription.objects.filter(pk=local_id).values_list("stripe_subscription_id", flat=True).first()
            or Invoice.objects.filter(pk=local_id).values_list("stripe_invoice_id", flat=True).first()
            or Payment.objects.filter(pk=local_id).values_list("stripe_payment_intent_id", flat=True).first()
        )
        if not stripe_id:
            return []
        events = StripeEvent.objects.filter(payload__data__object__id=stripe_id).order_by("processed_at")
        return [
            f"{e.processed_at:%H:%M:%S.%f} {e.type} created={e.stripe_created} "
            f"status={e.data_object.get('status')} ({e.stripe_event_id})"
            for e in events
        ]

    def credit_grants_once(self) -> None:
        """No two credit lots for one purchase, invoice or grant; no two ledger grants for one lot or reference."""
        links = [
            f.name
            for f in CreditLot._meta.get_fields()
            if isinstance(f, models.ForeignKey) and f.name not in ("project", "customer", "feature")
        ]
        lots = CreditLot.objects.filter(project=self.project)
        self.checked["credit-lot"] += lots.count()
        for link in links:
            counted = Counter(lots.exclude(**{f"{link}__isnull": True}).values_list(link, "feature_id"))
            for (target, _), count in counted.items():
                if count > 1:
                    self.differ(f"credit lots of {link} {target}", "count", count, 1)
        grants = CreditLedgerEntry.objects.filter(project=self.project, type=CreditLedgerEntry.Type.GRANT)
        for lot, count in Counter(grants.values_list("lot_id", flat=True)).items():
            if count > 1:
                self.differ(f"ledger grants of lot {lot}", "count", count, 1)
        for (customer, feature, reference), count in Counter(
            grants.values_list("customer_id", "feature_id", "reference")
        ).items():
            if reference and count > 1:
                self.differ(f"ledger grants for {reference}", f"{customer}/{feature}", count, 1)

    def inbox(self) -> None:
        for event_type, stripe_id, error in StripeEvent.objects.filter(
            status=StripeEvent.Status.FAILED
        ).values_list("type", "stripe_event_id", "last_error"):
            self.differ(
                f"stripe event {stripe_id}", f"{event_type} status", f"failed: {error[:160]}", "processed"
            )


def render(
    *,
    seed: int,
    scenario: Scenario,
    mismatches: list[Mismatch],
    checked: str,
    errors: list[str],
    deliveries: list[tuple[str, int]],
    refused: list[tuple[str, int, str]],
    repair_output: str,
    timing: str,
) -> str:
    lines = [f"seed {seed}: {scenario.describe()}", f"checked: {checked}; took {timing}"]
    if errors:
        lines += ["scenario steps that failed:", *(f"  {e}" for e in errors)]
    if refused:
        lines += ["deliveries the intake refused:", *(f"  {r}" for r in refused[:20])]
    if mismatches:
        lines += [
            f"{len(mismatches)} difference(s) (object, field, local, Stripe):",
            *(m.row() for m in mismatches),
        ]
    dropped = [label for label, times in deliveries if times == 0]
    lines.append(
        f"deliveries: {len(deliveries)} events captured, {sum(times for _, times in deliveries)} deliveries, "
        f"{len(dropped)} never delivered: {', '.join(dropped)}"
    )
    lines += ["repair tools said:", *(f"  {line}" for line in repair_output.splitlines()[-40:])]
    return "\n".join(lines)
