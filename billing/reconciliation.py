"""Reconciliation: compare local mirrors with Stripe, record drift, and with `fix` apply Stripe's state through
the same functions the webhook processors use — then re-read the rows and record the drift `fixed` only if they
now match Stripe, else `failed` with what still differs.

Pages through each Stripe account Tollgate uses (the platform's, and projects' own), within Stripe's read rate
limit. Checked: subscriptions (status, price, quantity, cancellation, period), invoices (status, amounts, the
subscription they belong to) and every payment attempt Stripe has for them (`invoice_payments`: paid ones are
settled and linked to their PaymentIntent, failed ones recorded), every charge's refunded amount and every
dispute, and every open payment's Checkout Session or PaymentIntent.

Time is Stripe's, never ours: a repair marks the mirror with the `created` of the newest event Stripe had when
the run started (its clock may be ahead of ours, as with test clocks), so events older than the state read are
not applied over it, and newer ones are.
"""

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing import subscriptions
from billing.gateway import (
    PLATFORM_ACCOUNT,
    StripeGateway,
    from_timestamp,
    gateway_for,
    platform_gateway,
    stripe_account_of,
    stripe_id,
)
from billing.models import Customer, Drift, Invoice, Payment, ReconciliationRun, Subscription
from billing.payments import (
    DISPUTE_RANK,
    intent_status,
    payment_apply_charge,
    payment_apply_checkout,
    payment_apply_dispute,
    payment_apply_intent,
)
from core.actors import Actor
from core.errors import ApiError, RateLimited
from core.services import audit_record
from projects.models import Project

logger = logging.getLogger(__name__)


class _Reader:
    """Stripe reads of one account, paced under its read rate limit."""

    def __init__(self, account: str, gateway: StripeGateway) -> None:
        self.account = account
        self.gateway = gateway

    def pace(self) -> None:
        while True:
            try:
                subscriptions.stripe_read_allowed(self.account)
                return
            except RateLimited:
                time.sleep(0.05)

    def each(self, resource: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        self.pace()  # the first page; the SDK pages on, each page one more read
        for count, item in enumerate(self.gateway.list_all(resource, {"limit": 100, **params}), start=1):
            if count % 100 == 0:
                self.pace()
            yield item

    def checkout_session(self, session_id: str) -> dict[str, Any]:
        self.pace()
        return self.gateway.checkout_session_retrieve(session_id)

    def payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        self.pace()
        return self.gateway.payment_intent_retrieve(payment_intent_id)

    def invoice_payments(self, **query: str) -> list[dict[str, Any]]:
        self.pace()
        return self.gateway.invoice_payments_list(**query)

    def stripe_now(self) -> int:
        """Stripe's clock: the `created` of the newest event of the account (0 when it has none)."""
        self.pace()
        return self.gateway.clock()


Expected = dict[str, tuple[Any, Any]]  # field → (local, stripe)


def _differences(pairs: Expected) -> Expected:
    return {name: pair for name, pair in pairs.items() if pair[0] != pair[1]}


class _Run:
    def __init__(self, run: ReconciliationRun, *, fix: bool, since: datetime | None) -> None:
        self.run = run
        self.fix = fix and not run.dry_run
        self.since = since
        self.marker = 0  # Stripe's `created` as of this account's read (see the module docstring)

    # --- recording ---------------------------------------------------------------------------------------

    def check(
        self,
        project: Project,
        object_type: str,
        stripe_id: str,
        *,
        local_id: str,
        compare: Callable[[], Expected | None],
        repair: Callable[[], None],
    ) -> None:
        """Compares one object (None from `compare`: missing locally); with fix, repairs it, compares again
        against the same Stripe state, and records each drift fixed or failed."""
        before = compare()
        if before is not None and not _differences(before):
            return
        drifts = self._record(project, object_type, stripe_id, local_id, before)
        if not self.fix:
            return
        try:
            repair()
        except ApiError as exc:
            self._settle(drifts, failed=f"repair failed: {exc.code}: {exc.message}")
            return
        after = compare()
        remaining = _differences(after) if after is not None else {"": ("missing", "present")}
        self._settle(
            drifts,
            failed="; ".join(
                f"{name or object_type}: local={pair[0]!r} stripe={pair[1]!r}"
                for name, pair in remaining.items()
            )
            if remaining
            else "",
        )

    def _record(
        self, project: Project, object_type: str, stripe_id: str, local_id: str, before: Expected | None
    ) -> list[Drift]:
        if before is None:
            return [self.drift(project, Drift.Kind.MISSING_LOCALLY, object_type, stripe_id)]
        return [
            self.drift(
                project,
                Drift.Kind.MISMATCH,
                object_type,
                stripe_id,
                local_id=local_id,
                field=name,
                local=pair[0],
                stripe=pair[1],
            )
            for name, pair in _differences(before).items()
        ]

    def drift(
        self,
        project: Project,
        kind: str,
        object_type: str,
        stripe_id: str,
        *,
        local_id: str = "",
        field: str = "",
        local: Any = "",
        stripe: Any = "",
    ) -> Drift:
        self.run.drift_count += 1
        return Drift.objects.create(
            run=self.run,
            project=project,
            kind=kind,
            object_type=object_type,
            stripe_id=stripe_id,
            local_id=local_id,
            field=field,
            local_value=str(local)[:255],
            stripe_value=str(stripe)[:255],
        )

    def _settle(self, drifts: list[Drift], *, failed: str) -> None:
        for drift in drifts:
            drift.status = Drift.Status.FAILED if failed else Drift.Status.FIXED
            drift.detail = failed
            drift.resolved_at = None if failed else timezone.now()
            drift.save(update_fields=["status", "detail", "resolved_at"])
            if not failed:
                self.run.fixed_count += 1

    def _created(self) -> dict[str, Any]:
        return {"created": {"gte": int(self.since.timestamp())}} if self.since else {}

    # --- subscriptions --------------------------------------------------------------------------------------

    def subscriptions(self, reader: _Reader, projects: list[Project]) -> None:
        seen: set[str] = set()
        for stripe_subscription in reader.each("subscriptions", {"status": "all", **self._created()}):
            self.run.checked += 1
            seen.add(stripe_subscription["id"])
            customer = subscriptions.customer_for_stripe(
                account=reader.account,
                stripe_customer_id=stripe_id(stripe_subscription.get("customer")),
                metadata=stripe_subscription.get("metadata"),
            )
            if customer is None or customer.project not in projects:
                continue  # not ours, or another project than the one asked for
            self.check(
                customer.project,
                "subscription",
                stripe_subscription["id"],
                local_id=self._local_subscription_id(customer, stripe_subscription["id"]),
                compare=partial(self._subscription_pairs, customer, stripe_subscription),
                repair=partial(self._subscription_repair, reader, stripe_subscription),
            )
        if self.since is not None:
            return
        for local in Subscription.objects.filter(project__in=projects).exclude(
            stripe_subscription_id__in=seen
        ):
            if stripe_account_of(local.project) == reader.account:
                self.drift(
                    local.project,
                    Drift.Kind.MISSING_IN_STRIPE,
                    "subscription",
                    local.stripe_subscription_id,
                    local_id=local.pk,
                )

    @staticmethod
    def _local_subscription_id(customer: Customer, stripe_id: str) -> str:
        return (
            Subscription.objects.filter(project=customer.project, stripe_subscription_id=stripe_id)
            .values_list("pk", flat=True)
            .first()
            or ""
        )

    @staticmethod
    def _subscription_pairs(customer: Customer, stripe_subscription: dict[str, Any]) -> Expected | None:
        local = Subscription.objects.filter(
            project=customer.project, stripe_subscription_id=stripe_subscription["id"]
        ).first()
        if local is None:
            return None
        item = ((stripe_subscription.get("items") or {}).get("data") or [{}])[0]
        return {
            "status": (local.status, stripe_subscription.get("status")),
            "cancel_at_period_end": (
                local.cancel_at_period_end,
                bool(stripe_subscription.get("cancel_at_period_end")),
            ),
            "quantity": (local.quantity, int(item.get("quantity") or 1)),
            "stripe_price_id": (local.stripe_price_id, stripe_id(item.get("price"))),
            "current_period_start": (
                local.current_period_start,
                from_timestamp(item.get("current_period_start")),
            ),
            "current_period_end": (local.current_period_end, from_timestamp(item.get("current_period_end"))),
            "trial_end": (local.trial_end, from_timestamp(stripe_subscription.get("trial_end"))),
            "canceled_at": (local.canceled_at, from_timestamp(stripe_subscription.get("canceled_at"))),
        }

    def _subscription_repair(self, reader: _Reader, stripe_subscription: dict[str, Any]) -> None:
        subscriptions.subscription_apply(
            account=reader.account,
            stripe_subscription=stripe_subscription,
            event_created=self.marker,
            force=True,
        )

    # --- invoices and their payment attempts ----------------------------------------------------------------

    def invoices(self, reader: _Reader, projects: list[Project]) -> None:
        for stripe_invoice in reader.each("invoices", self._created()):
            self.run.checked += 1
            customer = subscriptions.customer_for_stripe(
                account=reader.account, stripe_customer_id=stripe_id(stripe_invoice.get("customer"))
            )
            if customer is None or customer.project not in projects:
                continue
            local_id = (
                Invoice.objects.filter(project=customer.project, stripe_invoice_id=stripe_invoice["id"])
                .values_list("pk", flat=True)
                .first()
                or ""
            )
            self.check(
                customer.project,
                "invoice",
                stripe_invoice["id"],
                local_id=local_id,
                compare=partial(self._invoice_pairs, customer, stripe_invoice),
                repair=partial(self._invoice_repair, reader, stripe_invoice),
            )
            attempts = self._attempts(reader, customer, stripe_invoice)
            if attempts is None:
                continue
            self.check(
                customer.project,
                "payment",
                stripe_invoice["id"],
                local_id=Payment.objects.filter(
                    project=customer.project, stripe_invoice_id=stripe_invoice["id"]
                )
                .values_list("pk", flat=True)
                .first()
                or "",
                compare=partial(self._payment_pairs, customer, stripe_invoice, attempts),
                repair=partial(self._payment_repair, reader, stripe_invoice, attempts),
            )

    @staticmethod
    def _invoice_pairs(customer: Customer, stripe_invoice: dict[str, Any]) -> Expected | None:
        local = (
            Invoice.objects.filter(project=customer.project, stripe_invoice_id=stripe_invoice["id"])
            .select_related("subscription")
            .first()
        )
        if local is None:
            return None
        stripe_subscription = subscriptions.invoice_subscription_id(stripe_invoice)
        pairs: Expected = {
            name: (getattr(local, name), int(stripe_invoice.get(name) or 0))
            for name in ("subtotal", "total", "amount_due", "amount_paid", "amount_remaining")
        }
        pairs["status"] = (local.status, stripe_invoice.get("status"))
        pairs["number"] = (local.number, stripe_invoice.get("number") or "")
        if (
            stripe_subscription
            and Subscription.objects.filter(
                project=customer.project, stripe_subscription_id=stripe_subscription
            ).exists()
        ):
            pairs["subscription"] = (
                local.subscription.stripe_subscription_id if local.subscription else "",
                stripe_subscription,
            )
        return pairs

    def _invoice_repair(self, reader: _Reader, stripe_invoice: dict[str, Any]) -> None:
        subscriptions.invoice_apply(
            account=reader.account, stripe_invoice=stripe_invoice, event_created=self.marker, force=True
        )

    def _attempts(
        self, reader: _Reader, customer: Customer, stripe_invoice: dict[str, Any]
    ) -> list[dict[str, Any]] | None:
        """Stripe's payment attempts of the invoice when there is one to mirror (a paid invoice, or an open
        one that was attempted), read only when the local payment does not already match; None: nothing to
        mirror."""
        status = stripe_invoice.get("status")
        attempted = int(stripe_invoice.get("attempt_count") or 0) > 0
        if not (status == "paid" or (status in ("open", "uncollectible") and attempted)):
            return None
        payment = Payment.objects.filter(
            project=customer.project, stripe_invoice_id=stripe_invoice["id"]
        ).first()
        paid_amount = int(stripe_invoice.get("amount_paid") or 0)
        if payment is not None and status == "paid":
            settled = payment.status in (*Payment.PAID_STATUSES, Payment.Status.NO_PAYMENT_REQUIRED)
            if settled and (payment.stripe_payment_intent_id or not paid_amount):
                return []  # matches without a read
        if (
            payment is not None
            and status != "paid"
            and payment.stripe_payment_intent_id
            and payment.status == Payment.Status.REQUIRES_PAYMENT_METHOD
        ):
            return []
        return reader.invoice_payments(invoice=stripe_invoice["id"])

    @staticmethod
    def _intent_of(attempts: list[dict[str, Any]]) -> str:
        for record in attempts:  # newest first: the latest attempt's intent
            intent = stripe_id((record.get("payment") or {}).get("payment_intent"))
            if intent:
                return intent
        return ""

    def _payment_pairs(
        self, customer: Customer, stripe_invoice: dict[str, Any], attempts: list[dict[str, Any]]
    ) -> Expected | None:
        payment = Payment.objects.filter(
            project=customer.project, stripe_invoice_id=stripe_invoice["id"]
        ).first()
        if payment is None:
            return None
        paid = stripe_invoice.get("status") == "paid"
        pairs: Expected = {}
        if paid:
            expected = (
                Payment.Status.NO_PAYMENT_REQUIRED
                if not int(stripe_invoice.get("amount_paid") or 0)
                else Payment.Status.SUCCEEDED
            )
            settled = (
                payment.status
                if payment.status not in (*Payment.PAID_STATUSES, Payment.Status.NO_PAYMENT_REQUIRED)
                else expected
            )
            pairs["status"] = (settled, expected)
        else:
            failed = (Payment.Status.REQUIRES_PAYMENT_METHOD, Payment.Status.FAILED)
            pairs["status"] = ("failed" if payment.status in failed else payment.status, "failed")
        intent = self._intent_of(attempts)
        if intent:
            pairs["stripe_payment_intent_id"] = (payment.stripe_payment_intent_id, intent)
        return pairs

    def _payment_repair(
        self, reader: _Reader, stripe_invoice: dict[str, Any], attempts: list[dict[str, Any]]
    ) -> None:
        invoice = subscriptions.invoice_apply(
            account=reader.account, stripe_invoice=stripe_invoice, event_created=self.marker
        )
        if invoice is None:
            return
        intent = self._intent_of(attempts)
        subscriptions.invoice_link_payment_intent(invoice=invoice, payment_intent_id=intent)
        subscriptions.invoice_payment_apply(
            invoice=invoice,
            stripe_invoice=stripe_invoice,
            payment_intent_id=intent,
            paid=stripe_invoice.get("status") == "paid",
        )

    # --- charges (refunds) and disputes -----------------------------------------------------------------------

    def charges(self, reader: _Reader, projects: list[Project]) -> None:
        for charge in reader.each("charges", self._created()):
            intent = stripe_id(charge.get("payment_intent"))
            if not intent:
                continue
            self.run.checked += 1
            payment = self._payment_of_intent(reader.account, projects, intent)
            if payment is None:
                continue
            self.check(
                payment.project,
                "charge",
                charge["id"],
                local_id=payment.pk,
                compare=partial(self._charge_pairs, payment, charge),
                repair=partial(self._charge_repair, payment, charge),
            )

    @staticmethod
    def _payment_of_intent(account: str, projects: list[Project], intent: str) -> Payment | None:
        payment = (
            Payment.objects.filter(project__in=projects, stripe_payment_intent_id=intent)
            .select_related("project", "customer")
            .first()
        )
        if payment is None or stripe_account_of(payment.project) != account:
            return None
        return payment

    @staticmethod
    def _charge_pairs(payment: Payment, charge: dict[str, Any]) -> Expected:
        local = Payment.objects.get(pk=payment.pk)
        refunded = min(int(charge.get("amount_refunded") or 0), local.amount)
        pairs: Expected = {"amount_refunded": (local.amount_refunded, refunded)}
        if charge.get("status") == "succeeded":
            pairs["paid"] = (local.status in Payment.PAID_STATUSES, True)
        return pairs

    @staticmethod
    def _charge_repair(payment: Payment, charge: dict[str, Any]) -> None:
        payment_apply_charge(payment=Payment.objects.get(pk=payment.pk), charge=charge)

    def disputes(self, reader: _Reader, projects: list[Project]) -> None:
        for dispute in reader.each("disputes", self._created()):
            intent = stripe_id(dispute.get("payment_intent"))
            self.run.checked += 1
            payment = self._payment_of_intent(reader.account, projects, intent) if intent else None
            if payment is None:
                continue
            self.check(
                payment.project,
                "dispute",
                dispute["id"],
                local_id=payment.pk,
                compare=partial(self._dispute_pairs, payment, dispute),
                repair=partial(self._dispute_repair, payment, dispute),
            )

    @staticmethod
    def _dispute_pairs(payment: Payment, dispute: dict[str, Any]) -> Expected:
        local = Payment.objects.get(pk=payment.pk)
        outcome = str(dispute.get("status") or "")
        held = local.dispute_status
        # A payment held at a later dispute state than this dispute's (a second dispute) is not drift.
        if DISPUTE_RANK.get(held, 0) > DISPUTE_RANK.get(outcome, 0):
            held = outcome
        return {"dispute_status": (held, outcome)}

    @staticmethod
    def _dispute_repair(payment: Payment, dispute: dict[str, Any]) -> None:
        payment_apply_dispute(payment=Payment.objects.get(pk=payment.pk), dispute=dispute)

    # --- open payments --------------------------------------------------------------------------------------

    def open_payments(self, reader: _Reader, projects: list[Project]) -> None:
        open_payments = Payment.objects.filter(
            project__in=projects, status__in=Payment.OPEN_STATUSES
        ).select_related("project", "customer")
        for payment in open_payments:
            if stripe_account_of(payment.project) != reader.account:
                continue
            if payment.source == Payment.Source.INVOICE:
                continue  # an invoice's payment follows its invoice (checked above)
            self.run.checked += 1
            if payment.stripe_checkout_session_id:
                session = reader.checkout_session(payment.stripe_checkout_session_id)
                if session["status"] != "open":
                    self.check(
                        payment.project,
                        "checkout_session",
                        session["id"],
                        local_id=payment.pk,
                        compare=partial(self._checkout_pairs, payment),
                        repair=partial(self._checkout_repair, payment, session),
                    )
            elif payment.stripe_payment_intent_id:
                intent = reader.payment_intent(payment.stripe_payment_intent_id)
                if intent["status"] in (
                    "succeeded",
                    "canceled",
                    "processing",
                    "requires_action",
                ) or intent.get("last_payment_error"):
                    self.check(
                        payment.project,
                        "payment_intent",
                        intent["id"],
                        local_id=payment.pk,
                        compare=partial(self._intent_pairs, payment, intent),
                        repair=partial(self._intent_repair, payment, intent),
                    )

    @staticmethod
    def _checkout_pairs(payment: Payment) -> Expected:
        return {"open": (Payment.objects.get(pk=payment.pk).is_open, False)}

    @staticmethod
    def _intent_pairs(payment: Payment, intent: dict[str, Any]) -> Expected:
        return {"status": (Payment.objects.get(pk=payment.pk).status, intent_status(intent))}

    @staticmethod
    def _checkout_repair(payment: Payment, session: dict[str, Any]) -> None:
        payment_apply_checkout(payment=Payment.objects.get(pk=payment.pk), stripe_session=session)

    @staticmethod
    def _intent_repair(payment: Payment, intent: dict[str, Any]) -> None:
        payment_apply_intent(payment=Payment.objects.get(pk=payment.pk), intent=intent)

    # --- closing --------------------------------------------------------------------------------------------

    def supersede(self, projects: list[Project]) -> None:
        """A complete run is the truth now: drift that earlier runs left open (a dry run's, or repaired since
        by events or by this run) and that this run does not leave open is resolved."""
        if self.since is not None:
            return
        found = {
            (d.object_type, d.stripe_id, d.field)
            for d in Drift.objects.filter(
                run=self.run, status__in=(Drift.Status.OPEN, Drift.Status.FAILED)
            ).only("object_type", "stripe_id", "field")
        }
        stale = Drift.objects.filter(
            project__in=projects, status__in=(Drift.Status.OPEN, Drift.Status.FAILED)
        ).exclude(run=self.run)
        now = timezone.now()
        for drift in stale:
            if (drift.object_type, drift.stripe_id, drift.field) not in found:
                drift.status = Drift.Status.RESOLVED
                drift.resolved_at = now
                drift.save(update_fields=["status", "resolved_at"])


def reconcile(
    *,
    project: Project | None = None,
    fix: bool = False,
    dry_run: bool = False,
    since: datetime | None = None,
    actor: Actor | None = None,
    reason: str = "",
) -> ReconciliationRun:
    """Runs one reconciliation (of one project, or of all) and returns its record."""
    run = ReconciliationRun.objects.create(project=project, fix=fix, dry_run=dry_run)
    state = _Run(run, fix=fix, since=since)
    projects = [project] if project is not None else list(Project.objects.all())
    accounts: dict[str, tuple[StripeGateway, list[Project]]] = {}
    for each in projects:
        account = stripe_account_of(each)
        gateway = gateway_for(each) if account != PLATFORM_ACCOUNT else platform_gateway()
        accounts.setdefault(account, (gateway, []))[1].append(each)
    try:
        for account, (gateway, members) in accounts.items():
            reader = _Reader(account, gateway)
            state.marker = reader.stripe_now()
            state.subscriptions(reader, members)
            state.invoices(reader, members)
            state.open_payments(reader, members)
            state.charges(reader, members)
            state.disputes(reader, members)
        run.status = ReconciliationRun.Status.COMPLETED
        state.supersede(projects)
    except ApiError as exc:  # Stripe unavailable: the run is recorded as failed, the next one starts over
        run.status = ReconciliationRun.Status.FAILED
        run.error = f"{exc.code}: {exc.message}"
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save()
        if actor is not None:
            audit_record(
                actor=actor,
                action="reconciliation.run",
                target=run,
                project=project,
                reason=reason,
                after={
                    "fix": run.fix,
                    "drift": run.drift_count,
                    "fixed": run.fixed_count,
                    "status": run.status,
                },
            )
    return run
