"""Entitlement writes: the recompute hook, purchases, grants, revocations, usage, consume/release and credits.

Hooks other apps call (billing, the Stripe processors):

- `entitlements_recompute(customer=)` — something that may change what a customer may use happened. Records
  `entitlements.updated` when the answer changed and bumps the customer's cache version on commit.
- `purchase_record(payment=)` — a succeeded payment's one-time lines become purchases (and credit lots).
  Idempotent: the fulfilment key is (payment, line).
- `purchase_revoke(payment=, reason=)` — a full refund or a lost dispute ends what the payment granted and takes
  back its unspent credits. Idempotent.
- `plan_credits_grant(payment=)` / `plan_credits_revoke(payment=, reason=)` — the same for a subscription's
  paid period: the invoice's payment grants the plan's credits for the period (a `PlanPeriod` and its lots,
  keyed by the payment), and a full refund or a lost dispute takes back what is unspent. Idempotent.
- `payment_entitlements_apply(payment=)` — a payment's status or dispute changed: billing's one call, which picks
  among the above and a plain recompute.

Limits hold under concurrency because counters change only through one conditional SQL statement
(`UPDATE … SET used = used + n WHERE … AND used + n <= limit RETURNING used`) and credit lots are spent under
row locks. A denied consume rolls back, so it records nothing. On PostgreSQL a metered consume is one call of
`tollgate_metered_consume` (migration 0005), which takes its own event back when it refuses.
"""

import hashlib
import json
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from billing.models import Customer, Invoice, Payment, Price, Product
from core.actors import Actor
from core.db import in_transaction
from core.errors import ApiError, Conflict, InvalidRequest
from core.ids import new_id, new_ids
from core.services import audit_record
from entitlements import cache as ent_cache
from entitlements import resolver
from entitlements.models import (
    AllocationCounter,
    CreditLedgerEntry,
    CreditLot,
    EntitlementSettings,
    EntitlementState,
    Feature,
    Grant,
    PlanPeriod,
    ProductAccess,
    ProductFeature,
    Purchase,
    Revocation,
    UsageCounter,
    UsageEvent,
)
from entitlements.selectors import entitlements_body, feature_answer, snapshot_entry
from projects.models import Project
from webhooks.outbound import event_record

logger = logging.getLogger(__name__)

MAX_FUTURE_SECONDS = 300  # clock skew tolerated on usage timestamps
THRESHOLDS = (0.8, 1.0)
FULFILLABLE = (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED, Payment.Status.DISPUTED)
DISPUTE_LOST = "lost"  # Stripe's dispute status once the bank sided with the cardholder
# A subscription's period is paid by these too: a trial's first invoice (or one a coupon zeroes) is paid with 0.
PLAN_PAID = (*FULFILLABLE, Payment.Status.NO_PAYMENT_REQUIRED)
# The invoices that bill a whole period in advance, and so grant the plan's credits for it. A plan change in the
# middle of a period (`subscription_update`, prorations) grants nothing: the new plan's credits come with the next
# period's invoice.
PLAN_CREDIT_REASONS = ("subscription_create", "subscription_cycle")
INVOICE_FINALIZED = ("open", "paid")  # a draft's lines may still change; a void invoice bills nothing


def version_key(customer: Customer) -> str:
    """The cache key of the customer's structure version (what every entitlement change bumps)."""
    return ent_cache.Keys.of(customer.project_id, customer.external_id).structure_version


# --- the recompute hook -------------------------------------------------------------------------------------


def _answer_digest(structure: dict[str, Any]) -> str:
    """What the customer may use, without usage, sources or timing: the part `entitlements.updated` announces."""
    shape = {
        key: [entry["type"], entry["enabled"], entry["value"], entry["limit"], entry["revoked"]]
        for key, entry in structure["features"].items()
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()


def entitlements_recompute(*, customer: Customer) -> None:
    """What `customer` may use has (possibly) changed: announce it if it did, and invalidate cached answers on
    commit. Runs in the caller's transaction, or in its own."""
    with transaction.atomic():
        _plan_credits_catch_up(customer)
        project = customer.project  # loaded with the customer on every hot path
        now = timezone.now()
        structure = resolver.resolve_structure(project=project, customer=customer, now=now)
        digest = _answer_digest(structure)
        state = _state_locked(customer, project, now)
        if state.digest != digest:
            state.digest = digest
            state.save(update_fields=["digest", "updated_at"])
            usage = resolver.resolve_usage(customer_id=customer.pk, structure=structure, now=now)
            event_record(
                project=project,
                type="entitlements.updated",
                data_object=entitlements_body(customer.external_id, structure, usage),
            )
        ent_cache.structure_changed(project_id=customer.project_id, external_id=customer.external_id)


def _state_locked(customer: Customer, project: Project, now: datetime) -> EntitlementState:
    """The customer's last announced answer, under its row lock. A customer seen for the first time starts
    from what anyone gets without a customer record (the project's default product), so a customer whose
    first recompute changes nothing announces nothing."""
    state = EntitlementState.objects.select_for_update().filter(customer_id=customer.pk).first()
    if state is not None:
        return state
    baseline = _answer_digest(resolver.resolve_structure(project=project, customer=None, now=now))
    EntitlementState.objects.bulk_create(
        [EntitlementState(customer_id=customer.pk, digest=baseline)], ignore_conflicts=True
    )
    return EntitlementState.objects.select_for_update().get(customer_id=customer.pk)


def entitlements_project_changed(*, project: Project) -> None:
    """The project's catalog values or default product changed: every cached answer of the project is stale."""
    ent_cache.project_changed(project_id=project.pk)


SETTINGS_FIELDS = ("past_due_grace_seconds", "usage_grace_seconds", "credits_low_percent")


def entitlement_settings_update(
    *, project: Project, actor: Actor, reason: str = "", **changes: int
) -> EntitlementSettings:
    """Changes a project's entitlement settings (grace periods, the `credits.low` mark), audited; every cached
    answer of the project is recomputed with them."""
    unknown = sorted(set(changes) - set(SETTINGS_FIELDS))
    if unknown:
        raise InvalidRequest(f"{unknown[0]}: Unknown parameter.", code="unknown_parameter", param=unknown[0])
    with transaction.atomic():
        EntitlementSettings.objects.get_or_create(project=project)
        locked = EntitlementSettings.objects.select_for_update().get(project=project)
        before = {name: getattr(locked, name) for name in SETTINGS_FIELDS}
        for name, value in changes.items():
            setattr(locked, name, value)
        after = {name: getattr(locked, name) for name in SETTINGS_FIELDS}
        if after != before:
            locked.save()
            audit_record(
                actor=actor,
                action="entitlement_settings.updated",
                target=locked,
                project=project,
                reason=reason,
                before=before,
                after=after,
            )
            entitlements_project_changed(project=project)
    return locked


# --- purchases ----------------------------------------------------------------------------------------------


def payment_entitlements_apply(*, payment: Payment) -> None:
    """A payment's status or dispute outcome changed (called by billing in the same transaction): a paid one-time
    purchase is recorded, a paid subscription invoice grants its period's plan credits, a full refund or a lost
    dispute takes back what either granted, and anything else (a dispute opened — access is kept, flagged) only
    recomputes a purchase's answer."""
    if payment.status == Payment.Status.REFUNDED or payment.dispute_status == DISPUTE_LOST:
        reason = "lost dispute" if payment.dispute_status == DISPUTE_LOST else "refunded in full"
        changed = purchase_revoke(payment=payment, reason=reason)
        changed = plan_credits_revoke(payment=payment, reason=reason) or changed
    else:
        changed = purchase_record(payment=payment)
        changed = plan_credits_grant(payment=payment) or changed
    # Only purchases take a payment's status into account (a disputed purchase is flagged): a subscription's
    # payment that granted or took back nothing changes no answer, so nothing is recomputed for it.
    if not changed and Purchase.objects.filter(payment_id=payment.pk).exists():
        entitlements_recompute(customer=payment.customer)


def purchase_record(*, payment: Payment) -> bool:
    """Records the one-time lines of a succeeded payment as purchases, grants the credits they carry
    (feature value × quantity, as lots expiring with the purchase), and recomputes. Idempotent per payment;
    returns whether anything was recorded."""
    if payment.status not in FULFILLABLE:
        return False
    # A payment's lines never change: one without a one-time price (a subscription's) records nothing, and
    # needs no lock to know it.
    price_ids = [item.get("price") for item in payment.items if item.get("price")]
    prices = {
        p.pk: p
        for p in Price.objects.filter(
            project_id=payment.project_id, pk__in=price_ids, type=Price.Type.ONE_TIME
        ).select_related("product")
    }
    if not prices:
        return False
    with transaction.atomic():
        locked = Payment.objects.select_for_update().select_related("customer").get(pk=payment.pk)
        if locked.status not in FULFILLABLE or Purchase.objects.filter(payment=locked).exists():
            return False
        if locked.dispute_status == DISPUTE_LOST:
            return False
        starts_at = locked.succeeded_at or timezone.now()
        recorded = False
        for line, item in enumerate(locked.items):
            price = prices.get(item.get("price") or "")
            if price is None or price.type != Price.Type.ONE_TIME:
                continue  # subscriptions give their features through the subscription mirror
            quantity = int(item.get("quantity") or 1)
            access = ProductAccess.objects.filter(product=price.product).first()
            ends_at = (
                starts_at + timedelta(days=access.duration_days)
                if access is not None and access.duration_days
                else None
            )
            purchase = Purchase.objects.create(
                project_id=locked.project_id,
                customer=locked.customer,
                payment=locked,
                line=line,
                product=price.product,
                price=price,
                quantity=quantity,
                starts_at=starts_at,
                ends_at=ends_at,
            )
            recorded = True
            credit_values = ProductFeature.objects.filter(
                product=price.product, feature__type=Feature.Type.CREDITS, value__isnull=False
            ).select_related("feature")
            for row in credit_values:
                if isinstance(row.value, int) and row.value > 0:
                    _lot_create(
                        customer=locked.customer,
                        feature=row.feature,
                        amount=row.value * quantity,
                        expires_at=ends_at,
                        purchase=purchase,
                        reference=purchase.pk,
                    )
        if recorded:
            entitlements_recompute(customer=locked.customer)
        return recorded


def purchase_revoke(*, payment: Payment, reason: str, actor: Actor | None = None) -> bool:
    """Ends what `payment`'s purchases granted and takes back their unspent credits (a full refund, a lost
    dispute, or an operator's decision after a partial refund). A subscription's payment has no purchases: its
    subscription is left alone. Idempotent; returns whether anything was taken back."""
    with transaction.atomic():
        locked = Payment.objects.select_for_update().select_related("customer").get(pk=payment.pk)
        purchases = list(Purchase.objects.select_for_update().filter(payment=locked, revoked_at__isnull=True))
        if not purchases:
            return False
        now = timezone.now()
        for purchase in purchases:
            purchase.revoked_at = now
            purchase.revoke_reason = reason[:500]
            purchase.save(update_fields=["revoked_at", "revoke_reason"])
            audit_record(
                actor=actor or Actor.system("purchase_revoke"),
                action="purchase.revoked",
                target=purchase,
                project=locked.project,
                reason=reason,
                before={"revoked_at": None},
                after={"revoked_at": now.isoformat(), "payment": locked.pk},
            )
        _lots_take_back(CreditLot.objects.filter(purchase__in=purchases), now=now, reference=locked.pk)
        entitlements_recompute(customer=locked.customer)
        return True


# --- plan credits -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PlanLine:
    """What a period invoice billed: the plan, how many units, and the period it pays for."""

    product: Product
    quantity: int
    period_start: datetime
    period_end: datetime


def plan_credits_grant(*, payment: Payment) -> bool:
    """A subscription invoice's payment is paid (a trial's first invoice too, with 0): grants the plan's credits
    for the period the invoice bills — one lot per `credits` feature of the product (the value, × the quantity
    where it is `per_unit`), expiring at the period end (no rollover). Only `subscription_create` and
    `subscription_cycle` invoices grant. Idempotent per payment; an invoice not mirrored yet is granted by the
    recompute hook or by this call once it is: billing may call it whenever it learns of an invoice's payment
    (a period already settled costs one indexed read, no lock). Returns whether credits were granted."""
    if not payment.stripe_invoice_id or PlanPeriod.objects.filter(payment_id=payment.pk).exists():
        return False
    with transaction.atomic():
        locked = Payment.objects.select_for_update(of=("self",)).select_related("customer").get(pk=payment.pk)
        period = _plan_period_record(locked)
        if period is None or not period.lots.exists():
            return False
        # Lots change balances, which the announced answer leaves out (see _answer_digest): cached answers are
        # invalidated, and there is nothing to announce.
        ent_cache.structure_changed(project_id=locked.project_id, external_id=locked.customer.external_id)
        return True


def plan_credits_revoke(*, payment: Payment, reason: str, actor: Actor | None = None) -> bool:
    """A subscription invoice's payment was refunded in full or lost a dispute: takes back the unspent credits its
    period granted (the subscription itself is left alone). Idempotent; returns whether anything was taken
    back."""
    if not payment.stripe_invoice_id:
        return False
    with transaction.atomic():
        locked = Payment.objects.select_for_update(of=("self",)).select_related("customer").get(pk=payment.pk)
        period = (
            PlanPeriod.objects.select_for_update().filter(payment=locked, revoked_at__isnull=True).first()
        )
        if period is None:
            return False
        now = timezone.now()
        period.revoked_at = now
        period.revoke_reason = reason[:500]
        period.save(update_fields=["revoked_at", "revoke_reason"])
        audit_record(
            actor=actor or Actor.system("plan_credits_revoke"),
            action="plan_period.revoked",
            target=period,
            project=Project.objects.get(pk=locked.project_id),
            reason=reason,
            before={"revoked_at": None},
            after={"revoked_at": now.isoformat(), "payment": locked.pk, "invoice": period.invoice_id},
        )
        _lots_take_back(CreditLot.objects.filter(plan_period=period), now=now, reference=locked.pk)
        entitlements_recompute(customer=locked.customer)
        return True


def _plan_period_record(locked: Payment) -> PlanPeriod | None:
    """Records the paid period of `locked` (a payment under its row lock) and grants its plan credits; None when
    the payment is not a paid period invoice's, is settled already, or its invoice is not mirrored (finalized)
    yet. The fulfilment keys — one period per payment, one lot per period and feature — make a race that slips
    past the lock fail instead of granting twice."""
    if (
        not locked.stripe_invoice_id
        or locked.status not in PLAN_PAID
        or locked.dispute_status == DISPUTE_LOST
        or PlanPeriod.objects.filter(payment=locked).exists()
    ):
        return None
    invoice = Invoice.objects.filter(
        project_id=locked.project_id, stripe_invoice_id=locked.stripe_invoice_id
    ).first()
    if (
        invoice is None
        or invoice.billing_reason not in PLAN_CREDIT_REASONS
        or invoice.status not in INVOICE_FINALIZED
    ):
        return None
    line = _plan_line(invoice)
    period = PlanPeriod.objects.create(
        project_id=locked.project_id,
        customer=locked.customer,
        payment=locked,
        invoice=invoice,
        product=line.product if line else None,
        quantity=line.quantity if line else 1,
        period_start=line.period_start if line else None,
        period_end=line.period_end if line else None,
    )
    if line is None:
        logger.warning(
            "Invoice %s of payment %s has no subscription line with a catalog price: no plan credits.",
            invoice.stripe_invoice_id,
            locked.pk,
        )
        return period
    values = ProductFeature.objects.filter(
        product=line.product, feature__type=Feature.Type.CREDITS
    ).select_related("feature")
    for row in values.order_by("feature__key"):
        _, amount = resolver.product_value(
            {row.feature_id: (row.value, row.per_unit)}, row.feature, line.quantity
        )
        if isinstance(amount, int) and not isinstance(amount, bool) and amount > 0:
            _lot_create(
                customer=locked.customer,
                feature=row.feature,
                amount=amount,
                expires_at=line.period_end,
                plan_period=period,
                reference=invoice.pk,
            )
    return period


def _plan_line(invoice: Invoice) -> _PlanLine | None:
    """The invoice's licensed subscription line (not a proration, not metered usage billed in arrears): its
    period is the one paid for — a renewal invoice's own `period_start`/`period_end` are the period that ended."""
    for line in invoice.lines or []:
        stripe_price_id = line.get("stripe_price_id")
        start, end = line.get("period_start"), line.get("period_end")
        if line.get("proration") or not stripe_price_id or not start or not end or int(end) <= int(start):
            continue
        price = _catalog_price(invoice.project_id, stripe_price_id)
        if (
            price is None
            or price.type != Price.Type.RECURRING
            or price.usage_type != Price.UsageType.LICENSED
        ):
            continue
        quantity = line.get("quantity")
        return _PlanLine(
            product=price.product,
            quantity=int(quantity) if quantity is not None else 1,
            period_start=datetime.fromtimestamp(int(start), UTC),
            period_end=datetime.fromtimestamp(int(end), UTC),
        )
    return None


def _catalog_price(project_id: str, stripe_price_id: str) -> Price | None:
    """Our price for a Stripe price id: the current one, or one an amount change replaced (its history)."""
    prices = Price.objects.select_related("product").filter(project_id=project_id)
    price = prices.filter(stripe_price_id=stripe_price_id).first()
    if price is None:
        price = next(
            (p for p in prices.exclude(stripe_price_history=[]) if stripe_price_id in p.stripe_price_history),
            None,
        )
    return price


def _plan_credits_catch_up(customer: Customer) -> None:
    """Grants the plan credits of the customer's paid period invoices that were paid before their invoice was
    mirrored (Checkout's completion may arrive before `invoice.paid`): the invoice's arrival ends in this
    recompute. A payment another transaction holds is skipped — that transaction settles it. Payments already
    settled have a `PlanPeriod` and are not looked at again."""
    invoices = Invoice.objects.filter(
        project_id=OuterRef("project_id"),
        stripe_invoice_id=OuterRef("stripe_invoice_id"),
        billing_reason__in=PLAN_CREDIT_REASONS,
        status__in=INVOICE_FINALIZED,
    )
    due = list(
        Payment.objects.filter(customer_id=customer.pk, status__in=PLAN_PAID, plan_period__isnull=True)
        .exclude(stripe_invoice_id="")
        .exclude(dispute_status=DISPUTE_LOST)
        .filter(Exists(invoices))
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    )
    for pk in due:
        locked = (
            Payment.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("customer")
            .filter(pk=pk)
            .first()
        )
        if locked is not None:
            _plan_period_record(locked)


def _lot_create(
    *,
    customer: Customer,
    feature: Feature,
    amount: int,
    expires_at: datetime | None,
    reference: str,
    purchase: Purchase | None = None,
    plan_period: PlanPeriod | None = None,
    grant: Grant | None = None,
) -> CreditLot:
    source = CreditLot.Source.GRANT
    if purchase is not None:
        source = CreditLot.Source.PURCHASE
    elif plan_period is not None:
        source = CreditLot.Source.PLAN
    lot = CreditLot.objects.create(
        project_id=customer.project_id,
        customer=customer,
        feature=feature,
        source=source,
        purchase=purchase,
        plan_period=plan_period,
        grant=grant,
        amount=amount,
        remaining=amount,
        expires_at=expires_at,
    )
    CreditLedgerEntry.objects.create(
        project_id=customer.project_id,
        customer=customer,
        feature=feature,
        lot=lot,
        type=CreditLedgerEntry.Type.GRANT,
        amount=amount,
        reference=reference,
    )
    return lot


def _lots_take_back(lots: Any, *, now: datetime, reference: str) -> None:
    for lot in lots.select_for_update().filter(voided_at__isnull=True).order_by("pk"):
        if lot.remaining > 0:
            CreditLedgerEntry.objects.create(
                project_id=lot.project_id,
                customer_id=lot.customer_id,
                feature_id=lot.feature_id,
                lot=lot,
                type=CreditLedgerEntry.Type.REVOKE,
                amount=-lot.remaining,
                reference=reference,
            )
        lot.remaining = 0
        lot.voided_at = now
        lot.save(update_fields=["remaining", "voided_at"])


# --- customers on first sight -------------------------------------------------------------------------------


def customers_ensure(*, project: Project, external_ids: Iterable[str]) -> dict[str, str]:
    """Our customer ids for the tenant's user ids, creating the missing customers (usage may name a user the
    project has not registered yet)."""
    wanted = set(external_ids)
    found = dict(
        Customer.objects.filter(project=project, external_id__in=wanted).values_list("external_id", "pk")
    )
    missing = wanted - set(found)
    if missing:
        Customer.objects.bulk_create(
            [Customer(project=project, external_id=external_id) for external_id in sorted(missing)],
            ignore_conflicts=True,
        )
        found.update(
            Customer.objects.filter(project=project, external_id__in=missing).values_list("external_id", "pk")
        )
        # Cached snapshots of an unknown customer name no customer row: recompute them.
        ent_cache.bump_on_commit(
            [ent_cache.Keys.of(project.pk, e).structure_version for e in sorted(missing)]
        )
    return found


def _customer_for(project: Project, external_id: str) -> Customer:
    customer_id = customers_ensure(project=project, external_ids=[external_id])[external_id]
    return Customer.objects.get(pk=customer_id)


# --- grants and revocations ---------------------------------------------------------------------------------


def _future(expires_at: datetime | None, param: str = "expires_at") -> None:
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidRequest(f"{param} must be in the future.", code="invalid_parameter", param=param)


def grant_value_parse(*, feature: Feature, value: Any, given: bool) -> Any:
    """Checks a grant's value against the feature type: boolean → true/false (default true); static → any JSON
    (required); metered/allocation → integer ≥ 0 added to the limit, or null for unlimited (default);
    credits → integer ≥ 1 (required), granted as a lot."""
    kind = feature.type
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == Feature.Type.BOOLEAN:
        if not given:
            return True
        if not isinstance(value, bool):
            raise InvalidRequest(
                "value: a boolean feature takes true or false.", code="invalid_parameter", param="value"
            )
        return value
    if kind == Feature.Type.STATIC:
        if not given:
            raise InvalidRequest(
                "value: a static feature needs a value.", code="parameter_missing", param="value"
            )
        return value
    if kind == Feature.Type.CREDITS:
        if not is_int or value < 1:
            raise InvalidRequest(
                "value: a credits grant is an integer number of credits ≥ 1.",
                code="parameter_missing" if not given else "invalid_parameter",
                param="value",
            )
        return value
    if value is None:
        return None
    if not is_int or value < 0:
        raise InvalidRequest(
            f"value: a {kind} grant is an integer ≥ 0 added to the limit, or null for unlimited.",
            code="invalid_parameter",
            param="value",
        )
    return value


def grant_create(
    *,
    project: Project,
    actor: Actor,
    external_id: str,
    feature: Feature,
    reason: str,
    value: Any = None,
    value_given: bool = False,
    expires_at: datetime | None = None,
) -> Grant:
    """Grants a feature to a customer (a top-up on metered, credits and allocation; sets boolean/static)."""
    value = grant_value_parse(feature=feature, value=value, given=value_given)
    _future(expires_at)
    customer = _customer_for(project, external_id)
    with transaction.atomic():
        grant = Grant.objects.create(
            project=project,
            customer=customer,
            feature=feature,
            value=value,
            expires_at=expires_at,
            reason=reason,
        )
        if feature.type == Feature.Type.CREDITS:
            _lot_create(
                customer=customer,
                feature=feature,
                amount=value,
                expires_at=expires_at,
                grant=grant,
                reference=grant.pk,
            )
        audit_record(
            actor=actor,
            action="entitlement_grant.created",
            target=grant,
            project=project,
            reason=reason,
            after=_grant_audit(grant),
        )
        entitlements_recompute(customer=customer)
    return grant


def _grant_audit(grant: Grant) -> dict[str, Any]:
    return {
        "customer": grant.customer.external_id,
        "feature": grant.feature.key,
        "value": grant.value,
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
    }


def grant_delete(*, grant: Grant, actor: Actor, reason: str = "") -> Grant:
    """Ends a grant now; the unspent credits of a credits grant are taken back. Idempotent."""
    with transaction.atomic():
        now = timezone.now()
        if not Grant.objects.filter(pk=grant.pk, deleted_at__isnull=True).update(deleted_at=now):
            return Grant.objects.get(pk=grant.pk)
        locked = Grant.objects.select_related("customer", "feature", "project").get(pk=grant.pk)
        _lots_take_back(CreditLot.objects.filter(grant=locked), now=now, reference=locked.pk)
        audit_record(
            actor=actor,
            action="entitlement_grant.deleted",
            target=locked,
            project=locked.project,
            reason=reason,
            before=_grant_audit(locked),
            after={"deleted_at": now.isoformat()},
        )
        entitlements_recompute(customer=locked.customer)
    return locked


def revocation_create(
    *,
    project: Project,
    actor: Actor,
    external_id: str,
    feature: Feature,
    reason: str,
    expires_at: datetime | None = None,
) -> Revocation:
    """Takes a feature away from a customer, whatever grants the customer it, until it expires or is deleted."""
    _future(expires_at)
    customer = _customer_for(project, external_id)
    with transaction.atomic():
        revocation = Revocation.objects.create(
            project=project, customer=customer, feature=feature, expires_at=expires_at, reason=reason
        )
        audit_record(
            actor=actor,
            action="entitlement_revocation.created",
            target=revocation,
            project=project,
            reason=reason,
            after={
                "customer": external_id,
                "feature": feature.key,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
        entitlements_recompute(customer=customer)
    return revocation


def revocation_delete(*, revocation: Revocation, actor: Actor, reason: str = "") -> Revocation:
    with transaction.atomic():
        now = timezone.now()
        if not Revocation.objects.filter(pk=revocation.pk, deleted_at__isnull=True).update(deleted_at=now):
            return Revocation.objects.get(pk=revocation.pk)
        locked = Revocation.objects.select_related("customer", "feature", "project").get(pk=revocation.pk)
        audit_record(
            actor=actor,
            action="entitlement_revocation.deleted",
            target=locked,
            project=locked.project,
            reason=reason,
            before={"customer": locked.customer.external_id, "feature": locked.feature.key},
            after={"deleted_at": now.isoformat()},
        )
        entitlements_recompute(customer=locked.customer)
    return locked


# --- atomic SQL on events and counters ----------------------------------------------------------------------

_EVENT_COLUMNS = (
    "id",
    "project_id",
    "customer_id",
    "feature_id",
    "event_id",
    "kind",
    "quantity",
    "timestamp",
    "period_start",
    "properties",
    "meter_status",
    "meter_attempts",
    "meter_next_attempt_at",
    "meter_error",
    "created_at",
)


def _db_time(moment: datetime | None) -> Any:
    return connection.ops.adapt_datetimefield_value(moment) if moment is not None else None


_RECORD_TYPES = {
    "quantity": "bigint",
    "timestamp": "timestamptz",
    "period_start": "timestamptz",
    "properties": "jsonb",
    "meter_attempts": "smallint",
    "meter_next_attempt_at": "timestamptz",
    "created_at": "timestamptz",
}


def _events_insert(rows: list[dict[str, Any]]) -> set[str]:
    """Inserts usage events, skipping ids the project already has; returns the tenant ids actually inserted.
    On PostgreSQL the rows travel as one JSON document (`json_to_recordset`): one parameter instead of 15,000,
    encoded in C, so neither the driver nor the server handles a statement the size of the batch."""
    if not rows:
        return set()
    table = connection.ops.quote_name(UsageEvent._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _EVENT_COLUMNS)
    conflict = "ON CONFLICT (project_id, event_id) DO NOTHING RETURNING event_id"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            record = ", ".join(
                f"{connection.ops.quote_name(c)} {_RECORD_TYPES.get(c, 'text')}" for c in _EVENT_COLUMNS
            )
            payload = json.dumps(
                [{**row, "meter_attempts": 0, "meter_error": ""} for row in rows], default=_json_time
            )
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM json_to_recordset(%s::json) AS t({record}) "  # noqa: S608
                f"{conflict}",
                [payload],
            )
            return {r[0] for r in cursor.fetchall()}
        inserted: set[str] = set()
        placeholders = "(" + ", ".join(["%s"] * len(_EVENT_COLUMNS)) + ")"
        for start in range(0, len(rows), 500):
            part = rows[start : start + 500]
            params: list[Any] = []
            for row in part:
                full = {
                    **row,
                    "properties": json.dumps(row["properties"]),
                    "meter_attempts": 0,
                    "meter_error": "",
                }
                params += [
                    _db_time(full[c]) if isinstance(full[c], datetime) else full[c] for c in _EVENT_COLUMNS
                ]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholders] * len(part))} {conflict}",  # noqa: S608
                params,
            )
            inserted.update(r[0] for r in cursor.fetchall())
        return inserted


def _json_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _counters_add(
    project_id: str, additions: dict[tuple[str, str, datetime], tuple[datetime, int]]
) -> dict[tuple[str, str, datetime], int]:
    """Adds to period counters in one upsert; returns each counter's new `used`."""
    if not additions:
        return {}
    table = connection.ops.quote_name(UsageCounter._meta.db_table)
    now = _db_time(timezone.now())
    params: list[Any] = []
    keys: dict[tuple[str, str, Any], tuple[str, str, datetime]] = {}
    for (customer_id, feature_id, start), (end, amount) in additions.items():
        params += [project_id, customer_id, feature_id, _db_time(start), _db_time(end), amount, now]
        keys[(customer_id, feature_id, _db_time(start))] = (customer_id, feature_id, start)
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(additions))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (project_id, customer_id, feature_id, period_start, period_end, used, updated_at) "  # noqa: S608
            f"VALUES {values} ON CONFLICT (customer_id, feature_id, period_start) DO UPDATE "
            f"SET used = {table}.used + excluded.used, updated_at = excluded.updated_at "
            "RETURNING customer_id, feature_id, period_start, used",
            params,
        )
        rows = cursor.fetchall()
    result: dict[tuple[str, str, datetime], int] = {}
    for customer_id, feature_id, start, used in rows:
        key = keys.get((customer_id, feature_id, _db_time(start) if isinstance(start, datetime) else start))
        if key is not None:
            result[key] = int(used)
    return result


def _counter_take(
    *,
    project_id: str,
    customer_id: str,
    feature_id: str,
    period: resolver.Period,
    quantity: int,
    limit: int | None,
) -> int | None:
    """used += quantity if that stays within `limit` (None: no limit), atomically; the new `used`, or None."""
    table = connection.ops.quote_name(UsageCounter._meta.db_table)
    condition = "" if limit is None else " AND used + %s <= %s"
    params: list[Any] = [quantity, _db_time(timezone.now()), customer_id, feature_id, _db_time(period.start)]
    if limit is not None:
        params += [quantity, limit]
    sql = (
        f"UPDATE {table} SET used = used + %s, updated_at = %s "  # noqa: S608
        f"WHERE customer_id = %s AND feature_id = %s AND period_start = %s{condition} RETURNING used"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if row is None:  # refused, or the period's counter does not exist yet
            UsageCounter.objects.bulk_create(
                [
                    UsageCounter(
                        project_id=project_id,
                        customer_id=customer_id,
                        feature_id=feature_id,
                        period_start=period.start,
                        period_end=period.end,
                    )
                ],
                ignore_conflicts=True,
            )
            cursor.execute(sql, params)
            row = cursor.fetchone()
    return int(row[0]) if row is not None else None


_CONSUME_CALL = (
    "SELECT o_outcome, o_used FROM tollgate_metered_consume(%s, %s, %s, %s, %s, %s::bigint, %s::timestamptz, "
    "%s::timestamptz, %s::timestamptz, %s::boolean, %s::bigint, %s::double precision[])"
)


def _metered_consume_pg(
    row: dict[str, Any], period: resolver.Period, quantity: int, limit: int | None
) -> tuple[str, int]:
    """PostgreSQL: records a metered consume and adds it to its period counter within the limit, in one round
    trip (`tollgate_metered_consume`, migration 0005): no BEGIN or COMMIT of its own outside a transaction.
    Returns (outcome, used): `consumed` (used = the new count), `duplicate`, `denied` (used = the count that
    refused it), or `threshold` — it would cross 80 % or 100 % of the limit, so nothing was written and the
    caller records it in a transaction together with `usage.threshold_reached`."""
    marks = sorted(limit * threshold for threshold in THRESHOLDS) if limit else []
    params = [
        row["id"],
        row["project_id"],
        row["customer_id"],
        row["feature_id"],
        row["event_id"],
        quantity,
        row["timestamp"],
        period.start,
        period.end,
        bool(row["meter_status"]),
        limit,
        marks,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_CONSUME_CALL, params)
        outcome, used = cursor.fetchone()
    return str(outcome), int(used or 0)


def _allocation_move(
    *, project_id: str, customer_id: str, feature_id: str, delta: int, limit: int | None
) -> int | None:
    """in_use += delta, never above `limit` nor below 0, atomically; the new in_use, or None if refused."""
    table = connection.ops.quote_name(AllocationCounter._meta.db_table)
    if delta >= 0:
        condition = "" if limit is None else " AND in_use + %s <= %s"
        extra: list[Any] = [] if limit is None else [delta, limit]
    else:
        condition = " AND in_use + %s >= 0"
        extra = [delta]
    sql = (
        f"UPDATE {table} SET in_use = in_use + %s, updated_at = %s "  # noqa: S608
        f"WHERE customer_id = %s AND feature_id = %s{condition} RETURNING in_use"
    )
    params = [delta, _db_time(timezone.now()), customer_id, feature_id, *extra]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if row is None and delta > 0:
            AllocationCounter.objects.bulk_create(
                [AllocationCounter(project_id=project_id, customer_id=customer_id, feature_id=feature_id)],
                ignore_conflicts=True,
            )
            cursor.execute(sql, params)
            row = cursor.fetchone()
    return int(row[0]) if row is not None else None


# --- usage events -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageInput:
    """One usage event as the tenant sent it (validated for shape by the API)."""

    id: str
    customer: str
    feature: str
    quantity: int
    timestamp: datetime | None = None
    properties: dict[str, Any] | None = None


def _period_for(
    entry: dict[str, Any], timestamp: datetime, now: datetime, grace_seconds: int, param: str
) -> resolver.Period:
    """The metered period an event at `timestamp` counts in, or 400 when it is too late (or in the future)."""
    if timestamp > now + timedelta(seconds=MAX_FUTURE_SECONDS):
        raise InvalidRequest(
            f"{param}: {timestamp.isoformat()} is in the future.", code="timestamp_in_future", param=param
        )
    period = resolver.period_from_snapshot(entry)
    if timestamp >= period.start:
        return period
    previous = period.previous()
    grace_end = period.start + timedelta(seconds=grace_seconds)
    if timestamp >= previous.start and now < grace_end:
        return previous
    raise InvalidRequest(
        f"{param}: {timestamp.isoformat()} is too old. Usage is accepted for the current period (since "
        f"{period.start.isoformat()}) and for the previous one until {grace_seconds} seconds after it ended "
        f"({grace_end.isoformat()}).",
        code="timestamp_too_old",
        param=param,
    )


def usage_record_batch(
    *, project: Project, events: list[UsageInput], single: bool = False
) -> tuple[int, int, set[str]]:
    """Records usage events all or nothing; returns (accepted, duplicates, ids accepted). A duplicate id (within
    the batch, or recorded before) is counted once. Invalid input → 400 naming the event's index (`events[3]`),
    or just the field for a `single` event."""

    def at(index: int, name: str) -> str:
        return name if single else f"events[{index}].{name}"

    now = timezone.now()
    feature_keys = {e.feature for e in events}
    features = {f.key: f for f in Feature.objects.filter(project=project, key__in=feature_keys)}
    for index, event in enumerate(events):
        feature = features.get(event.feature)
        if feature is None:
            raise InvalidRequest(
                f"{at(index, 'feature')}: no such feature {event.feature!r}.",
                code="unknown_feature",
                param=at(index, "feature"),
            )
        if feature.type != Feature.Type.METERED:
            raise InvalidRequest(
                f"{at(index, 'feature')}: {event.feature!r} is a {feature.type} feature; usage events "
                "count metered features (use /entitlements/consume for credits and allocations).",
                code="feature_not_metered",
                param=at(index, "feature"),
            )
    structures = {
        external_id: ent_cache.snapshot_get(
            project=project, external_id=external_id, with_usage=False
        ).structure
        for external_id in {e.customer for e in events}
    }
    seen: set[str] = set()
    planned: list[tuple[UsageInput, datetime, resolver.Period]] = []
    current: dict[tuple[str, str], resolver.Period] = {}
    duplicates = 0
    for index, event in enumerate(events):
        structure = structures[event.customer]
        entry = structure["features"][event.feature]
        if event.timestamp is None and (event.customer, event.feature) in current:
            period, timestamp = current[(event.customer, event.feature)], now
        else:
            timestamp = event.timestamp or now
            period = _period_for(
                entry, timestamp, now, structure["usage_grace_seconds"], at(index, "timestamp")
            )
            if event.timestamp is None:
                current[(event.customer, event.feature)] = period
        if event.id in seen:
            duplicates += 1
            continue
        seen.add(event.id)
        planned.append((event, timestamp, period))
    customers = {ext: s["customer_id"] for ext, s in structures.items() if s["customer_id"]}
    if len(customers) < len(structures):
        customers.update(customers_ensure(project=project, external_ids=set(structures) - set(customers)))
    ids = new_ids("uev", len(planned))
    rows = [
        {
            "id": ids[index],
            "project_id": project.pk,
            "customer_id": customers[event.customer],
            "feature_id": features[event.feature].pk,
            "event_id": event.id,
            "kind": UsageEvent.Kind.USAGE,
            "quantity": event.quantity,
            "timestamp": timestamp,
            "period_start": period.start,
            "properties": event.properties or {},
            "meter_status": UsageEvent.MeterStatus.PENDING
            if features[event.feature].stripe_meter_event_name
            else "",
            "meter_next_attempt_at": now if features[event.feature].stripe_meter_event_name else None,
            "created_at": now,
        }
        for index, (event, timestamp, period) in enumerate(planned)
    ]
    with transaction.atomic():
        inserted = _events_insert(rows)
        additions: dict[tuple[str, str, datetime], tuple[datetime, int]] = {}
        metered_pending = False
        touched: set[str] = set()
        for event, _, period in planned:
            if event.id not in inserted:
                continue
            key = (customers[event.customer], features[event.feature].pk, period.start)
            end, amount = additions.get(key, (period.end, 0))
            additions[key] = (end, amount + event.quantity)
            touched.add(event.customer)
            metered_pending = metered_pending or bool(features[event.feature].stripe_meter_event_name)
        totals = _counters_add(project.pk, additions)
        by_customer_id = {pk: external_id for external_id, pk in customers.items()}
        key_of = {f.pk: f.key for f in features.values()}
        for (customer_id, feature_id, start), used in totals.items():
            external_id = by_customer_id[customer_id]
            entry = structures[external_id]["features"][key_of[feature_id]]
            if start.timestamp() == entry["period_start"]:
                _thresholds(
                    project,
                    external_id,
                    key_of[feature_id],
                    entry,
                    used - additions[(customer_id, feature_id, start)][1],
                    used,
                )
        ent_cache.usage_changed(project_id=project.pk, external_ids=sorted(touched))
        if metered_pending:
            transaction.on_commit(lambda: meter_report_queue(project_id=project.pk))
    accepted = len(inserted)
    return accepted, len(events) - accepted, inserted


def usage_record(*, project: Project, event: UsageInput) -> tuple[UsageEvent, bool]:
    """Records one usage event; returns it and whether it was new (the same id again is the stored event)."""
    _, _, inserted = usage_record_batch(project=project, events=[event], single=True)
    stored = UsageEvent.objects.select_related("customer", "feature").get(project=project, event_id=event.id)
    return stored, event.id in inserted


def _thresholds(
    project: Project, external_id: str, feature_key: str, entry: dict[str, Any], before: int, after: int
) -> None:
    limit = entry["limit"]
    if limit is None or limit <= 0:
        return
    for threshold in THRESHOLDS:
        mark = limit * threshold
        if before < mark <= after:
            event_record(
                project=project,
                type="usage.threshold_reached",
                data_object={
                    "customer": external_id,
                    "feature": feature_key,
                    "threshold": threshold,
                    "limit": limit,
                    "used": after,
                    "period_start": resolver.iso_epoch(entry.get("period_start")),
                    "period_end": resolver.iso_epoch(entry.get("period_end")),
                },
            )


# --- consume and release ------------------------------------------------------------------------------------


class _Denied(Exception):
    """Rolls back a consume that the limit or balance refused."""


def _event_row(
    *,
    project: Project,
    customer_id: str,
    feature: dict[str, Any],
    event_id: str,
    kind: str,
    quantity: int,
    period_start: datetime | None,
) -> dict[str, Any]:
    now = timezone.now()
    meter = kind == UsageEvent.Kind.CONSUME and feature["type"] == Feature.Type.METERED and feature["meter"]
    return {
        "id": new_id("uev"),
        "project_id": project.pk,
        "customer_id": customer_id,
        "feature_id": feature["id"],
        "event_id": event_id,
        "kind": kind,
        "quantity": quantity,
        "timestamp": now,
        "period_start": period_start,
        "properties": {},
        "meter_status": UsageEvent.MeterStatus.PENDING if meter else "",
        "meter_next_attempt_at": now if meter else None,
        "created_at": now,
    }


def _replay(
    project: Project, event_id: str, customer_id: str, feature_id: str, quantity: int, kind: str
) -> None:
    """The same id again: fine if it named the same thing (the first answer stands), else 409."""
    stored = (
        UsageEvent.objects.filter(project=project, event_id=event_id)
        .values_list("customer_id", "feature_id", "quantity", "kind")
        .first()
    )
    if stored is not None and stored != (customer_id, feature_id, quantity, kind):
        raise Conflict(
            f"id {event_id!r} was already used for another event.", code="idempotency_id_reused", param="id"
        )


def _structure_for_consume(
    project: Project, external_id: str, feature_key: str, read_ahead: dict[str, Any] | None
) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
    """(structure, customer id or None for a user the project has never seen, the feature's entry) for a
    consume or release: from the cache when warm."""
    snapshot = ent_cache.snapshot_get(
        project=project, external_id=external_id, with_usage=False, read_ahead=read_ahead
    )
    entry = snapshot_entry(snapshot, feature_key)
    entry["credits_low_percent"] = snapshot.structure["credits_low_percent"]
    return snapshot.structure, snapshot.structure["customer_id"], entry


def entitlement_consume(
    *,
    project: Project,
    event_id: str,
    external_id: str,
    feature_key: str,
    quantity: int,
    read_ahead: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Checks and records usage atomically. Denied → nothing recorded, `allowed: false`. The same id again is
    answered with the current state and `duplicate: true`, and records nothing more. `read_ahead`: the
    customer's cached structure as the request already fetched it (`cache.snapshot_get`)."""
    structure, customer_id, entry = _structure_for_consume(project, external_id, feature_key, read_ahead)
    kind = entry["type"]
    if kind not in (Feature.Type.METERED, Feature.Type.CREDITS, Feature.Type.ALLOCATION):
        raise InvalidRequest(
            f"feature: {feature_key!r} is a {kind} feature; only metered, credits and allocation features are "
            "consumed.",
            code="feature_not_consumable",
            param="feature",
        )
    period = resolver.period_from_snapshot(entry) if kind == Feature.Type.METERED else None
    usage: dict[str, Any] = {"used": {}, "in_use": {}, "balance": {}}
    refused = (not entry["enabled"] and kind != Feature.Type.CREDITS) or entry["revoked"]
    if customer_id is None:
        if (
            refused or kind == Feature.Type.CREDITS
        ):  # an unknown user has no credits: refused, nothing written
            return _answer(feature_key, entry, usage, quantity, allowed=False)
        customer_id = customers_ensure(project=project, external_ids=[external_id])[external_id]
    row = _event_row(
        project=project,
        customer_id=customer_id,
        feature=entry,
        event_id=event_id,
        kind=UsageEvent.Kind.CONSUME,
        quantity=quantity,
        period_start=period.start if period else None,
    )
    if period is not None and not refused and connection.vendor == "postgresql":
        # The hot path: one statement, no transaction of our own (see `_metered_consume_pg`).
        outcome, used = _metered_consume_pg(row, period, quantity, entry["limit"])
        if outcome == "consumed":
            _usage_recorded(project, external_id, entry, metered=True)
            usage["used"][feature_key] = used
            return _answer(feature_key, entry, usage, 0, allowed=True)
        if outcome == "denied":  # the statement saw the counter that refused it: no second query
            usage["used"][feature_key] = used
            return _answer(feature_key, entry, usage, quantity, allowed=False)
        if outcome == "duplicate":
            return _duplicate_answer(project, event_id, structure, customer_id, feature_key, entry, quantity)
        # "threshold": this use crosses 80 % or 100 % of the limit; recorded below, with its event.
    try:
        with transaction.atomic():
            if not _events_insert([row]):
                raise _Duplicate
            if refused:
                raise _Denied
            if period is not None:
                taken = _counter_take(
                    project_id=project.pk,
                    customer_id=customer_id,
                    feature_id=entry["id"],
                    period=period,
                    quantity=quantity,
                    limit=entry["limit"],
                )
                if taken is None:
                    raise _Denied
                _thresholds(project, external_id, feature_key, entry, taken - quantity, taken)
                usage["used"][feature_key] = taken
            elif kind == Feature.Type.ALLOCATION:
                in_use = _allocation_move(
                    project_id=project.pk,
                    customer_id=customer_id,
                    feature_id=entry["id"],
                    delta=quantity,
                    limit=entry["limit"],
                )
                if in_use is None:
                    raise _Denied
                usage["in_use"][feature_key] = in_use
            else:
                usage["balance"][feature_key] = _credits_spend(
                    project=project,
                    customer_id=customer_id,
                    external_id=external_id,
                    feature_key=feature_key,
                    entry=entry,
                    quantity=quantity,
                    reference=event_id,
                )
            _usage_recorded(project, external_id, entry, metered=period is not None)
    except _Denied:
        return _answer_now(structure, customer_id, feature_key, quantity, allowed=False)
    except _Duplicate:
        return _duplicate_answer(project, event_id, structure, customer_id, feature_key, entry, quantity)
    return _answer(feature_key, entry, usage, 0, allowed=True)


def _usage_recorded(project: Project, external_id: str, entry: dict[str, Any], *, metered: bool) -> None:
    """After a consume: the customer's cached usage is stale on commit, and metered usage is reported to Stripe."""
    ent_cache.usage_changed(project_id=project.pk, external_ids=[external_id])
    if metered and entry["meter"]:
        transaction.on_commit(lambda: meter_report_queue(project_id=project.pk))


def _duplicate_answer(
    project: Project,
    event_id: str,
    structure: dict[str, Any],
    customer_id: str,
    feature_key: str,
    entry: dict[str, Any],
    quantity: int,
) -> dict[str, Any]:
    """A consume id seen before: 409 if it named something else, else the current state, recording nothing."""
    _replay(project, event_id, customer_id, entry["id"], quantity, UsageEvent.Kind.CONSUME)
    return _answer_now(structure, customer_id, feature_key, 0, allowed=True, duplicate=True)


class _Duplicate(Exception):
    """The event id was recorded before (a retry): roll back and answer with the current state."""


def _public(answer: dict[str, Any]) -> dict[str, Any]:
    answer = dict(answer)
    answer.pop("sources", None)
    answer.pop("resets_at", None)
    return answer


def _answer(
    feature_key: str, entry: dict[str, Any], usage: dict[str, Any], quantity: int, *, allowed: bool
) -> dict[str, Any]:
    """A consume or release answer from usage the statement returned (no further query)."""
    answer = _public(feature_answer(feature_key, entry, usage, quantity))
    answer["allowed"] = allowed
    return answer


def _answer_now(
    structure: dict[str, Any],
    customer_id: str,
    feature_key: str,
    quantity: int,
    *,
    allowed: bool,
    duplicate: bool = False,
) -> dict[str, Any]:
    """The answer with usage read from the database now (after a denial or a replay)."""
    usage = resolver.resolve_usage(customer_id=customer_id, structure=structure, now=timezone.now())
    answer = _answer(feature_key, structure["features"][feature_key], usage, quantity, allowed=allowed)
    if duplicate:
        answer["duplicate"] = True
    return answer


def _credits_spend(
    *,
    project: Project,
    customer_id: str,
    external_id: str,
    feature_key: str,
    entry: dict[str, Any],
    quantity: int,
    reference: str,
) -> int:
    """Spends credits from the customer's valid lots, oldest-expiring first, under row locks; the balance left.
    Raises _Denied when the balance is short."""
    now = timezone.now()
    lots = list(
        CreditLot.objects.select_for_update()
        .filter(customer_id=customer_id, feature_id=entry["id"], voided_at__isnull=True, remaining__gt=0)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by(F("expires_at").asc(nulls_last=True), "created_at", "pk")
    )
    before = sum(lot.remaining for lot in lots)
    if before < max(quantity, 1):
        raise _Denied
    left = quantity
    entries = []
    for lot in lots:
        if left <= 0:
            break
        take = min(lot.remaining, left)
        left -= take
        CreditLot.objects.filter(pk=lot.pk).update(remaining=F("remaining") - take)
        entries.append(
            CreditLedgerEntry(
                project_id=project.pk,
                customer_id=customer_id,
                feature_id=entry["id"],
                lot=lot,
                type=CreditLedgerEntry.Type.CONSUME,
                amount=-take,
                reference=reference,
            )
        )
    CreditLedgerEntry.objects.bulk_create(entries)
    after = before - quantity
    total = sum(lot.amount for lot in lots)
    mark = math.floor(total * entry_low_percent(entry) / 100)
    if before > mark >= after or (after == 0 < before):
        event_record(
            project=project,
            type="credits.low",
            data_object={
                "customer": external_id,
                "feature": feature_key,
                "balance": after,
                "low_balance_mark": mark,
                "empty": after == 0,
            },
        )
    return after


def entry_low_percent(entry: dict[str, Any]) -> int:
    return int(entry.get("credits_low_percent", 20))


def entitlement_release(
    *,
    project: Project,
    actor: Actor,
    event_id: str,
    external_id: str,
    feature_key: str,
    quantity: int,
    reason: str = "",
    read_ahead: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Gives back allocation units (a seat freed), audited with the actor. The same id again changes nothing;
    giving back more than is held → 400."""
    structure, customer_id, entry = _structure_for_consume(project, external_id, feature_key, read_ahead)
    if entry["type"] != Feature.Type.ALLOCATION:
        raise InvalidRequest(
            f"feature: {feature_key!r} is a {entry['type']} feature; only allocation features are released.",
            code="feature_not_releasable",
            param="feature",
        )
    if customer_id is None:
        raise InvalidRequest(
            f"quantity: the customer holds no units of {feature_key!r}.",
            code="release_exceeds_allocation",
            param="quantity",
        )
    try:
        with transaction.atomic():
            inserted = _events_insert(
                [
                    _event_row(
                        project=project,
                        customer_id=customer_id,
                        feature=entry,
                        event_id=event_id,
                        kind=UsageEvent.Kind.RELEASE,
                        quantity=quantity,
                        period_start=None,
                    )
                ]
            )
            if not inserted:
                raise _Duplicate
            in_use = _allocation_move(
                project_id=project.pk,
                customer_id=customer_id,
                feature_id=entry["id"],
                delta=-quantity,
                limit=None,
            )
            if in_use is None:
                raise _Denied
            counter = AllocationCounter.objects.get(customer_id=customer_id, feature_id=entry["id"])
            audit_record(
                actor=actor,
                action="entitlement.released",
                target=counter,
                project=project,
                reason=reason,
                before={"in_use": in_use + quantity},
                after={"in_use": in_use, "id": event_id, "feature": feature_key, "customer": external_id},
            )
            ent_cache.usage_changed(project_id=project.pk, external_ids=[external_id])
    except _Duplicate:
        _replay(project, event_id, customer_id, entry["id"], quantity, UsageEvent.Kind.RELEASE)
        return _answer_now(structure, customer_id, feature_key, 0, allowed=True, duplicate=True)
    except _Denied:
        raise InvalidRequest(
            f"quantity: the customer holds fewer than {quantity} units of {feature_key!r}.",
            code="release_exceeds_allocation",
            param="quantity",
        ) from None
    return _answer_now(structure, customer_id, feature_key, 0, allowed=True)


# --- Stripe meter reporting ---------------------------------------------------------------------------------

METER_BATCH = 1000
METER_MAX_ATTEMPTS = 8
METER_CLAIM_SECONDS = 120


def meter_report_queue(*, project_id: str) -> None:
    """Queues the batched report of the project's pending meter events (called on commit)."""
    from entitlements.tasks import usage_report_to_stripe

    try:
        usage_report_to_stripe.delay(project_id)
    except Exception:  # the broker is down: the sweep reports them later
        logger.exception("Could not queue the meter report of %s; the sweep will send it.", project_id)


def _meter_backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 6 * 3600))


class _Pacer:
    """Keeps calls under `rate` per second in this process (Stripe's meter event limit is 1,000/s)."""

    def __init__(self, rate: int) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = time.monotonic()

    def wait(self) -> None:
        now = time.monotonic()
        if self.next_at > now:
            time.sleep(self.next_at - now)
        self.next_at = max(self.next_at, now) + self.interval


def meter_events_report(*, project_id: str, batch: int = METER_BATCH) -> int:
    """Reports up to `batch` due meter events of a project to Stripe, our event id as Stripe's `identifier`
    (a re-send is refused by Stripe as a duplicate, which counts as reported). Failures are retried with
    backoff from the database (`meter_next_attempt_at`); after METER_MAX_ATTEMPTS an event is `failed`.
    Returns how many were claimed."""
    from billing.gateway import gateway_for

    if in_transaction():
        raise RuntimeError("meter_events_report calls Stripe and must not run inside a transaction.")
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            UsageEvent.objects.select_for_update(skip_locked=True)
            .filter(
                project_id=project_id,
                meter_status=UsageEvent.MeterStatus.PENDING,
                meter_next_attempt_at__lte=now,
            )
            .order_by("meter_next_attempt_at")
            .values_list("pk", flat=True)[:batch]
        )
        UsageEvent.objects.filter(pk__in=ids).update(
            meter_next_attempt_at=now + timedelta(seconds=METER_CLAIM_SECONDS)
        )
    if not ids:
        return 0
    project = Project.objects.get(pk=project_id)
    gateway = gateway_for(project)
    pacer = _Pacer(settings.STRIPE_METER_EVENTS_PER_SECOND)
    reported: list[str] = []
    skipped: list[str] = []
    events = UsageEvent.objects.filter(pk__in=ids).select_related("customer", "feature")
    for event in events:
        if not event.customer.stripe_customer_id:
            skipped.append(event.pk)
            continue
        params = {
            "event_name": event.feature.stripe_meter_event_name,
            "payload": {
                "stripe_customer_id": event.customer.stripe_customer_id,
                "value": str(event.quantity),
            },
            "identifier": event.pk,
            "timestamp": int(event.timestamp.timestamp()),
        }
        pacer.wait()
        try:
            gateway.meter_event_create(params=params, idem=f"meter_event:{event.pk}")
        except ApiError as exc:
            if "already exists" in exc.message:
                reported.append(event.pk)
                continue
            attempts = event.meter_attempts + 1
            UsageEvent.objects.filter(pk=event.pk).update(
                meter_attempts=attempts,
                meter_error=exc.message[:500],
                meter_status=(
                    UsageEvent.MeterStatus.FAILED
                    if attempts >= METER_MAX_ATTEMPTS
                    else UsageEvent.MeterStatus.PENDING
                ),
                meter_next_attempt_at=timezone.now() + _meter_backoff(attempts),
            )
            continue
        reported.append(event.pk)
    done = timezone.now()
    if reported:
        UsageEvent.objects.filter(pk__in=reported).update(
            meter_status=UsageEvent.MeterStatus.REPORTED,
            meter_reported_at=done,
            meter_attempts=F("meter_attempts") + 1,
            meter_error="",
            meter_next_attempt_at=None,
        )
    if skipped:
        UsageEvent.objects.filter(pk__in=skipped).update(
            meter_status=UsageEvent.MeterStatus.SKIPPED,
            meter_error="The customer has no Stripe customer to bill.",
            meter_next_attempt_at=None,
        )
    return len(ids)


def meter_projects_due() -> list[str]:
    """Projects with meter events due for (another) report: what the periodic sweep visits."""
    return list(
        UsageEvent.objects.filter(
            meter_status=UsageEvent.MeterStatus.PENDING, meter_next_attempt_at__lte=timezone.now()
        )
        .values_list("project_id", flat=True)
        .distinct()
    )
