"""Reconciliation: compare local mirrors with Stripe, record drift, and with `fix` apply Stripe's state through
the same functions the webhook processors use.

Pages through each Stripe account Tollgate uses (the platform's, and projects' own), within Stripe's read rate
limit. Checked: subscriptions (status, price, quantity, cancellation, period), invoices (status and amounts) and
their payments, and every open payment's Checkout Session or PaymentIntent.
"""

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing import subscriptions
from billing.gateway import PLATFORM_ACCOUNT, StripeGateway, gateway_for, platform_gateway, stripe_account_of
from billing.models import Drift, Invoice, Payment, ReconciliationRun, Subscription
from billing.payments import payment_apply_checkout, payment_apply_intent
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

    def list(self, resource: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        self.pace()  # the first page; the SDK pages on, each page one more read
        for count, item in enumerate(self.gateway.list_all(resource, {"limit": 100, **params}), start=1):
            if count % 100 == 0:
                self.pace()
            yield item

    def retrieve(self, call: Any) -> dict[str, Any]:
        self.pace()
        result: dict[str, Any] = self.gateway.call(call).to_dict(for_json=True)
        return result


class _Run:
    def __init__(self, run: ReconciliationRun, *, fix: bool, since: datetime | None) -> None:
        self.run = run
        self.fix = fix and not run.dry_run
        self.since = since

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

    def fixed(self, drifts: list[Drift]) -> None:
        for drift in drifts:
            drift.fixed = True
            drift.save(update_fields=["fixed"])
            self.run.fixed_count += 1

    # --- subscriptions --------------------------------------------------------------------------------------

    def subscriptions(self, reader: _Reader, projects: list[Project]) -> None:
        created = {"created": {"gte": int(self.since.timestamp())}} if self.since else {}
        seen: set[str] = set()
        for stripe_subscription in reader.list("subscriptions", {"status": "all", **created}):
            self.run.checked += 1
            seen.add(stripe_subscription["id"])
            customer = subscriptions.customer_for_stripe(
                account=reader.account,
                stripe_customer_id=_id(stripe_subscription.get("customer")),
                metadata=stripe_subscription.get("metadata"),
            )
            if customer is None or customer.project not in projects:
                continue  # not ours, or another project than the one asked for
            local = (
                Subscription.objects.filter(
                    project=customer.project, stripe_subscription_id=stripe_subscription["id"]
                )
                .select_related("price")
                .first()
            )
            drifts = self._subscription_drifts(customer.project, local, stripe_subscription)
            if drifts and self.fix:
                subscriptions.subscription_apply(
                    account=reader.account,
                    stripe_subscription=stripe_subscription,
                    event_created=int(time.time()),
                    force=True,
                )
                self.fixed(drifts)
        for local in Subscription.objects.filter(project__in=projects).exclude(
            stripe_subscription_id__in=seen
        ):
            if self.since is None and stripe_account_of(local.project) == reader.account:
                self.drift(
                    local.project,
                    Drift.Kind.MISSING_IN_STRIPE,
                    "subscription",
                    local.stripe_subscription_id,
                    local_id=local.pk,
                )

    def _subscription_drifts(
        self, project: Project, local: Subscription | None, stripe_subscription: dict[str, Any]
    ) -> list[Drift]:
        if local is None:
            return [
                self.drift(project, Drift.Kind.MISSING_LOCALLY, "subscription", stripe_subscription["id"])
            ]
        items = (stripe_subscription.get("items") or {}).get("data") or [{}]
        item = items[0]
        expected = {
            "status": stripe_subscription.get("status"),
            "cancel_at_period_end": bool(stripe_subscription.get("cancel_at_period_end")),
            "quantity": int(item.get("quantity") or 1),
            "stripe_price_id": _id(item.get("price")),
            "current_period_end": _ts(item.get("current_period_end")),
        }
        return [
            self.drift(
                project,
                Drift.Kind.MISMATCH,
                "subscription",
                stripe_subscription["id"],
                local_id=local.pk,
                field=name,
                local=getattr(local, name),
                stripe=value,
            )
            for name, value in expected.items()
            if getattr(local, name) != value
        ]

    # --- invoices -------------------------------------------------------------------------------------------

    def invoices(self, reader: _Reader, projects: list[Project]) -> None:
        created = {"created": {"gte": int(self.since.timestamp())}} if self.since else {}
        for stripe_invoice in reader.list("invoices", created):
            self.run.checked += 1
            customer = subscriptions.customer_for_stripe(
                account=reader.account, stripe_customer_id=_id(stripe_invoice.get("customer"))
            )
            if customer is None or customer.project not in projects:
                continue
            local = Invoice.objects.filter(
                project=customer.project, stripe_invoice_id=stripe_invoice["id"]
            ).first()
            drifts: list[Drift] = []
            if local is None:
                drifts.append(
                    self.drift(customer.project, Drift.Kind.MISSING_LOCALLY, "invoice", stripe_invoice["id"])
                )
            else:
                for name in ("status", "total", "amount_paid", "amount_due"):
                    if str(getattr(local, name)) != str(stripe_invoice.get(name)):
                        drifts.append(
                            self.drift(
                                customer.project,
                                Drift.Kind.MISMATCH,
                                "invoice",
                                stripe_invoice["id"],
                                local_id=local.pk,
                                field=name,
                                local=getattr(local, name),
                                stripe=stripe_invoice.get(name),
                            )
                        )
            paid = stripe_invoice.get("status") == "paid"
            payment = Payment.objects.filter(
                project=customer.project, stripe_invoice_id=stripe_invoice["id"]
            ).first()
            if paid and (
                payment is None
                or payment.status not in (*Payment.PAID_STATUSES, Payment.Status.NO_PAYMENT_REQUIRED)
            ):
                drifts.append(
                    self.drift(
                        customer.project,
                        Drift.Kind.MISSING_LOCALLY if payment is None else Drift.Kind.MISMATCH,
                        "payment",
                        stripe_invoice["id"],
                        local_id=payment.pk if payment else "",
                        field="status",
                        local=payment.status if payment else "",
                        stripe="succeeded",
                    )
                )
            if drifts and self.fix:
                invoice = subscriptions.invoice_apply(
                    account=reader.account, stripe_invoice=stripe_invoice, event_created=int(time.time())
                )
                if invoice is not None and paid:
                    intent = (
                        self._invoice_intent(reader, stripe_invoice["id"])
                        if stripe_invoice.get("amount_paid")
                        else ""
                    )
                    subscriptions.invoice_payment_apply(
                        invoice=invoice, stripe_invoice=stripe_invoice, payment_intent_id=intent, paid=True
                    )
                self.fixed(drifts)

    def _invoice_intent(self, reader: _Reader, invoice_id: str) -> str:
        payments = reader.retrieve(lambda c: c.v1.invoice_payments.list({"invoice": invoice_id, "limit": 10}))
        for invoice_payment in payments.get("data") or []:
            intent = (invoice_payment.get("payment") or {}).get("payment_intent")
            if intent:
                return _id(intent)
        return ""

    # --- open payments --------------------------------------------------------------------------------------

    def open_payments(self, reader: _Reader, projects: list[Project]) -> None:
        open_payments = Payment.objects.filter(
            project__in=projects, status__in=Payment.OPEN_STATUSES
        ).select_related("project", "customer")
        for payment in open_payments:
            if stripe_account_of(payment.project) != reader.account:
                continue
            self.run.checked += 1
            if payment.stripe_checkout_session_id:
                session = reader.retrieve(
                    lambda c, sid=payment.stripe_checkout_session_id: c.v1.checkout.sessions.retrieve(sid)
                )
                if session["status"] != "open":
                    drift = self.drift(
                        payment.project,
                        Drift.Kind.MISMATCH,
                        "checkout_session",
                        session["id"],
                        local_id=payment.pk,
                        field="status",
                        local=payment.status,
                        stripe=f"{session['status']}/{session.get('payment_status')}",
                    )
                    if self.fix:
                        payment_apply_checkout(payment=payment, stripe_session=session)
                        self.fixed([drift])
            elif payment.stripe_payment_intent_id:
                intent = reader.retrieve(
                    lambda c, pid=payment.stripe_payment_intent_id: c.v1.payment_intents.retrieve(pid)
                )
                if intent["status"] in (
                    "succeeded",
                    "canceled",
                    "processing",
                    "requires_action",
                ) or intent.get("last_payment_error"):
                    before = payment.status
                    if self.fix:
                        payment = payment_apply_intent(payment=payment, intent=intent)
                    if payment.status != before or not self.fix:
                        drift = self.drift(
                            payment.project,
                            Drift.Kind.MISMATCH,
                            "payment_intent",
                            intent["id"],
                            local_id=payment.pk,
                            field="status",
                            local=before,
                            stripe=intent["status"],
                        )
                        if self.fix:
                            self.fixed([drift])


def _id(value: Any) -> str:
    return value if isinstance(value, str) else str((value or {}).get("id") or "")


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


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
            state.subscriptions(reader, members)
            state.invoices(reader, members)
            state.open_payments(reader, members)
        run.status = ReconciliationRun.Status.COMPLETED
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
