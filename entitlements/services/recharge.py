"""Auto-recharge of a credits balance (`AutoRecharge`): the tenant configures it per customer and credits feature
(`recharge_configure`: the balance at or below which to recharge, and a one-time price whose product grants the
feature's credits); a spend or a hold that leaves the balance there starts one charge (`recharge_start`, a
conditional update in the spend's transaction, then billing's task on commit); billing charges the saved card off
session under the reference `auto_recharge:<id>:<attempt>`, and the payment settles it (`recharge_settle`, in the
payment's transition): its credits are granted as any purchase's, only once it succeeded, and the recharge is
armed again; a failed payment leaves it `failed` until the tenant configures it again.
"""

from typing import Any

from celery import current_app
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from catalog.models import Feature, Price, ProductFeature
from catalog.selectors import feature_by_key, price_get
from core.errors import InvalidRequest, NotFound
from core.wording import with_article
from customers.models import Customer
from customers.selectors import customer_now
from entitlements import changes
from entitlements.models import AutoRecharge, CreditLot
from entitlements.selectors import credit_balance
from entitlements.services.customers import customers_ensure
from entitlements.services.plan_credits import FULFILLABLE
from entitlements.services.sources import PaymentFacts
from events.services.record import event_record
from projects.models import Project

CHARGE_TASK = "billing.tasks.auto_recharge_charge"
REFERENCE_PREFIX = "auto_recharge"
RECHARGE_REFERENCE = f"{REFERENCE_PREFIX}:"  # how the reference of an auto-recharge's payment starts
# Payment statuses that end an attempt without credits (an off-session decline is `requires_payment_method`).
FAILED_PAYMENT = ("requires_payment_method", "requires_action", "failed", "canceled", "expired")


def recharge_reference(recharge: AutoRecharge) -> str:
    """The payment reference of the recharge's current attempt: retries of one attempt are one payment."""
    return f"{REFERENCE_PREFIX}:{recharge.pk}:{recharge.attempt}"


def credits_per_recharge(price: Price, feature: Feature, quantity: int) -> int:
    value = (
        ProductFeature.objects.filter(product_id=price.product_id, feature=feature)
        .values_list("value", flat=True)
        .first()
    )
    return value * quantity if isinstance(value, int) and value > 0 else 0


def recharge_configure(
    *,
    project: Project,
    external_id: str,
    feature_key: str,
    below: int,
    price_key: str,
    quantity: int = 1,
    payment_method: str = "",
) -> tuple[AutoRecharge, bool]:
    """Creates or replaces the customer's auto-recharge of a credits feature, armed (a charge under way keeps
    going; a failed one is re-armed); (the recharge, whether it is new). When the balance already is at or below
    `below`, a charge starts now."""
    feature = feature_by_key(project=project, key=feature_key)
    if feature.type != Feature.Type.CREDITS:
        raise InvalidRequest(
            f"feature: {feature.key!r} is {with_article(feature.type)} feature; only credits balances are recharged.",
            code="feature_not_credits",
            param="feature",
        )
    price = price_get(project=project, key_or_id=price_key, param="price")
    if price.type != Price.Type.ONE_TIME or not price.active or price.unit_amount is None:
        raise InvalidRequest(
            f"price: {price.key!r} must be an active one-time price with a unit amount.",
            code="price_not_one_time",
            param="price",
        )
    if not credits_per_recharge(price, feature, quantity):
        raise InvalidRequest(
            f"price: {price.key!r} grants no {feature.key!r} credits (its product has no credits value for it).",
            code="price_grants_no_credits",
            param="price",
        )
    customer_id = customers_ensure(project=project, external_ids=[external_id])[external_id]
    values = {"below": below, "price": price, "quantity": quantity, "payment_method": payment_method}
    try:
        with transaction.atomic():
            recharge, created = AutoRecharge.objects.select_for_update().get_or_create(
                customer_id=customer_id, feature=feature, defaults={"project": project, **values}
            )
            if not created:
                for name, value in values.items():
                    setattr(recharge, name, value)
                if recharge.status == AutoRecharge.Status.FAILED:
                    recharge.status = AutoRecharge.Status.ARMED
                recharge.save()
            changes.structure_changed(project_id=project.pk, external_id=external_id)
    except IntegrityError:  # configured concurrently: the other one stands
        return AutoRecharge.objects.get(customer_id=customer_id, feature=feature), False
    customer = Customer.objects.select_related("test_clock").get(pk=customer_id)
    with transaction.atomic():
        recharge_start(
            customer_id=customer_id,
            feature_id=feature.pk,
            balance=credit_balance(
                customer_id=customer_id, feature_id=feature.pk, now=customer_now(customer=customer)
            ),
        )
    recharge.refresh_from_db()
    return recharge, created


def recharge_delete(*, project: Project, recharge_id: str) -> AutoRecharge:
    """Deletes the auto-recharge; a charge under way still settles (its credits are granted if it succeeds)."""
    recharge = (
        AutoRecharge.objects.select_related("customer", "feature", "price")
        .filter(project=project, pk=recharge_id)
        .first()
    )
    if recharge is None:
        raise NotFound(f"No such auto-recharge: {recharge_id!r}.", param="id")
    with transaction.atomic():
        AutoRecharge.objects.filter(pk=recharge.pk).delete()
        changes.structure_changed(project_id=project.pk, external_id=recharge.customer.external_id)
    return recharge


def recharge_start(*, customer_id: str, feature_id: str, balance: int) -> bool:
    """In the caller's transaction: an armed recharge whose mark the balance is at or below starts its next
    attempt, and billing's charge is queued on commit. At most one attempt runs at a time. `balance` is what the
    caller's spend saw; the balance is read again under the recharge's row lock, because a spend that read its
    lots before a recharge's credits were granted does not see them (and the recharge it sees is armed again).
    A test clock's customer's lots are judged at the clock's time (`customer_now`)."""
    recharge = (
        AutoRecharge.objects.select_for_update(of=("self",))
        .select_related("customer__test_clock")
        .filter(
            customer_id=customer_id,
            feature_id=feature_id,
            status=AutoRecharge.Status.ARMED,
            below__gte=balance,
        )
        .first()
    )
    if recharge is None:
        return False
    judged = customer_now(customer=recharge.customer)
    if credit_balance(customer_id=customer_id, feature_id=feature_id, now=judged) > recharge.below:
        return False
    now = timezone.now()
    AutoRecharge.objects.filter(pk=recharge.pk).update(
        status=AutoRecharge.Status.CHARGING,
        attempt=F("attempt") + 1,
        charging_since=now,
        payment_id="",
        last_error="",
        updated_at=now,
    )
    transaction.on_commit(lambda: current_app.signature(CHARGE_TASK, args=(recharge.pk,)).delay())
    return True


def recharge_payment_started(*, recharge: AutoRecharge, payment_id: str) -> None:
    """Billing made the attempt's payment: it is shown on the recharge (the attempt's, if still current)."""
    AutoRecharge.objects.filter(pk=recharge.pk, attempt=recharge.attempt, payment_id="").update(
        payment_id=payment_id
    )


def _attempt_of(reference: str) -> tuple[str, int] | None:
    parts = reference.split(":")
    if len(parts) != 3 or parts[0] != REFERENCE_PREFIX or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def recharge_settle(*, customer: Customer, payment: PaymentFacts) -> None:
    """A payment's status changed (in its transition, under its row lock, after its purchase was recorded):
    if it is an auto-recharge's current attempt, a success arms the recharge again (the credits were granted as
    the payment's purchase) and a failure leaves it `failed`; each announced once."""
    attempt = _attempt_of(payment.reference)
    if attempt is None:
        return
    recharge_id, number = attempt
    if payment.status in FULFILLABLE:
        recharge_end(
            recharge_id=recharge_id, attempt=number, payment_id=payment.id, error="", customer=customer
        )
    elif payment.status in FAILED_PAYMENT:
        error = payment.error_code or payment.status
        recharge_end(
            recharge_id=recharge_id, attempt=number, payment_id=payment.id, error=error, customer=customer
        )


def recharge_end(
    *, recharge_id: str, attempt: int, payment_id: str, error: str, customer: Customer | None = None
) -> bool:
    """Ends the recharge's attempt `attempt` once: armed again (`error` empty: the payment succeeded) or
    `failed` with `error`, announced as `credits.recharged` or `credits.recharge_failed`. False when that
    attempt had already ended (or is not the current one)."""
    now = timezone.now()
    fields: dict[str, Any] = (
        {"status": AutoRecharge.Status.FAILED, "last_error": error[:500]}
        if error
        else {"status": AutoRecharge.Status.ARMED, "recharged_at": now}
    )
    with transaction.atomic():
        ended = AutoRecharge.objects.filter(
            pk=recharge_id, attempt=attempt, status=AutoRecharge.Status.CHARGING
        ).update(
            charging_since=None,
            updated_at=now,
            **({"payment_id": payment_id} if payment_id else {}),
            **fields,
        )
        if not ended:
            return False
        recharge = AutoRecharge.objects.select_related(
            "project", "customer__test_clock", "feature", "price"
        ).get(pk=recharge_id)
        data: dict[str, Any] = {
            "customer": (customer or recharge.customer).external_id,
            "feature": recharge.feature.key,
            "auto_recharge": recharge.pk,
            "payment": payment_id or None,
        }
        if error:
            data["error"] = error
        else:
            granted = CreditLot.objects.filter(purchase__payment_id=payment_id, feature=recharge.feature)
            data["credits"] = int(granted.aggregate(total=Sum("amount"))["total"] or 0)
            data["balance"] = credit_balance(
                customer_id=recharge.customer_id,
                feature_id=recharge.feature_id,
                now=customer_now(customer=recharge.customer),
            )
        event_record(
            project=recharge.project,
            type="credits.recharge_failed" if error else "credits.recharged",
            data_object=data,
        )
    return True
