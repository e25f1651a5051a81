"""Coupon and promotion code writes, and the check a tenant's `promotion_code` passes before a purchase.

Stripe first, then our row: every refusal (ours, checked first with Stripe's own rules, or Stripe's) leaves
nothing on either side. The Stripe coupon takes our coupon's id, and both Stripe writes carry an idempotency
key made from our id, so a retried call never creates a second Stripe object. A Stripe object whose local
insert then loses a race (the same key or code created concurrently) is removed again.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import Coupon, Payment, PromotionCode
from billing.selectors import promotion_code_by_code
from catalog.selectors import product_get
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidRequest, ProviderError
from core.idempotency import Operation
from core.ids import new_id
from core.serializers import api_time
from customers.models import Customer
from projects.models import Project
from stripe_gateway.gateway import gateway_for, idempotency_key
from stripe_gateway.ownership import held_first_elsewhere, named_elsewhere, refuse_held_first_elsewhere

if TYPE_CHECKING:
    from billing.services.payment_requests import PaymentRequest

# Stripe: a coupon's redeem_by is at most five years ahead.
MAX_REDEEM_AHEAD = timedelta(days=5 * 365)


def coupon_snapshot(coupon: Coupon) -> dict[str, Any]:
    return {
        "key": coupon.key,
        "name": coupon.name,
        "percent_off": str(coupon.percent_off) if coupon.percent_off is not None else None,
        "amount_off": coupon.amount_off,
        "currency": coupon.currency or None,
        "duration": coupon.duration,
        "duration_in_months": coupon.duration_in_months,
        "max_redemptions": coupon.max_redemptions,
        "redeem_by": api_time(coupon.redeem_by),
        "applies_to": list(coupon.applies_to),
    }


def promotion_code_snapshot(promo: PromotionCode) -> dict[str, Any]:
    return {
        "code": promo.code,
        "coupon": promo.coupon_id,
        "max_redemptions": promo.max_redemptions,
        "expires_at": api_time(promo.expires_at),
        "first_time_transaction": promo.first_time_transaction,
        "active": promo.active,
    }


def _coupon_terms_check(
    *,
    percent_off: Decimal | None,
    amount_off: int | None,
    currency: str | None,
    duration: str,
    duration_in_months: int | None,
    redeem_by: datetime | None,
) -> None:
    """Stripe's rules for a coupon, checked before Stripe sees it."""
    if (percent_off is None) == (amount_off is None):
        raise InvalidRequest(
            "Give exactly one of percent_off or amount_off (with currency).",
            code="parameter_conflict",
            param="percent_off",
        )
    if percent_off is not None:
        if not Decimal(0) < percent_off <= Decimal(100):
            raise InvalidRequest(
                "percent_off must be greater than 0 and at most 100.",
                code="invalid_parameter",
                param="percent_off",
            )
        if currency:
            raise InvalidRequest(
                "currency goes with amount_off only.", code="parameter_conflict", param="currency"
            )
    if amount_off is not None and not currency:
        raise InvalidRequest(
            "currency is required with amount_off.", code="parameter_missing", param="currency"
        )
    if duration == Coupon.Duration.REPEATING and not duration_in_months:
        raise InvalidRequest(
            "duration_in_months is required when duration is repeating.",
            code="parameter_missing",
            param="duration_in_months",
        )
    if duration != Coupon.Duration.REPEATING and duration_in_months is not None:
        raise InvalidRequest(
            "duration_in_months goes with duration repeating only.",
            code="parameter_conflict",
            param="duration_in_months",
        )
    if redeem_by is not None:
        now = timezone.now()
        if not now < redeem_by <= now + MAX_REDEEM_AHEAD:
            raise InvalidRequest(
                "redeem_by must be in the future and at most five years ahead.",
                code="invalid_parameter",
                param="redeem_by",
            )


def coupon_create(
    *,
    project: Project,
    actor: Actor,
    key: str,
    duration: str,
    name: str = "",
    percent_off: Decimal | None = None,
    amount_off: int | None = None,
    currency: str | None = None,
    duration_in_months: int | None = None,
    max_redemptions: int | None = None,
    redeem_by: datetime | None = None,
    applies_to: list[str] | None = None,
    operation: Operation | None = None,
) -> Coupon:
    """Creates the coupon at Stripe (under our id), then ours. `applies_to`: keys or ids of the project's
    products (each synced to Stripe). A retry of the same `operation` (a tenant's Idempotency-Key) sends the
    same id and key, and answers the coupon its first attempt saved."""
    coupon_id = operation.object_id("cpn") if operation else new_id("cpn")
    if operation and (done := Coupon.objects.filter(pk=coupon_id, project=project).first()) is not None:
        return done
    currency = (currency or "").lower()
    _coupon_terms_check(
        percent_off=percent_off,
        amount_off=amount_off,
        currency=currency,
        duration=duration,
        duration_in_months=duration_in_months,
        redeem_by=redeem_by,
    )
    products = []
    for index, ref in enumerate(applies_to or []):
        product = product_get(project=project, key_or_id=ref, param=f"applies_to[{index}]")
        if not product.stripe_product_id:
            raise InvalidRequest(
                f"Product {product.key!r} is not synced to Stripe yet.",
                code="product_not_synced",
                param=f"applies_to[{index}]",
            )
        products.append(product)
    if Coupon.objects.filter(project=project, key=key, deleted_at__isnull=True).exists():
        raise Conflict(f"A coupon with key {key!r} already exists.", code="key_taken", param="key")
    coupon = Coupon(
        id=coupon_id,
        project=project,
        key=key,
        name=name,
        percent_off=percent_off,
        amount_off=amount_off,
        currency=currency,
        duration=duration,
        duration_in_months=duration_in_months,
        max_redemptions=max_redemptions,
        redeem_by=redeem_by,
        applies_to=[p.pk for p in products],
    )
    params: dict[str, Any] = {
        "id": coupon.pk,
        "duration": duration,
        "name": name or key,
        "metadata": {"tollgate_project": project.pk, "tollgate_coupon": coupon.pk, "key": key},
    }
    if percent_off is not None:
        params["percent_off"] = str(percent_off)
    else:
        params.update(amount_off=amount_off, currency=currency)
    if duration_in_months:
        params["duration_in_months"] = duration_in_months
    if max_redemptions:
        params["max_redemptions"] = max_redemptions
    if redeem_by is not None:
        params["redeem_by"] = int(redeem_by.timestamp())
    if products:
        params["applies_to"] = {"products": [p.stripe_product_id for p in products]}
    gateway = gateway_for(project)
    stripe_coupon = gateway.coupon_create(params=params, idem=idempotency_key("coupon", coupon.pk, "create"))
    coupon.stripe_coupon_id = stripe_coupon["id"]
    try:
        with transaction.atomic():
            coupon.save(force_insert=True)
            audit_coupon(actor=actor, coupon=coupon, action="coupon.created", after=coupon_snapshot(coupon))
    except (
        IntegrityError
    ) as exc:  # the same key, created concurrently: ours loses, and so does its Stripe twin
        gateway.coupon_delete(stripe_coupon["id"])
        raise Conflict(f"A coupon with key {key!r} already exists.", code="key_taken", param="key") from exc
    return coupon


def audit_coupon(
    *,
    actor: Actor,
    coupon: Coupon,
    action: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    audit_record(
        actor=actor, action=action, target=coupon, project=coupon.project, before=before, after=after
    )


def coupon_delete(*, actor: Actor, coupon: Coupon) -> Coupon:
    """Deletes the coupon at Stripe and hides it here. Discounts already given keep running (as at Stripe);
    its promotion codes can no longer be redeemed."""
    # A row copied from another project's Stripe coupon (adopted before adoption respected ownership): 404.
    refuse_held_first_elsewhere(coupon, project=coupon.project)
    gateway_for(coupon.project).coupon_delete(coupon.stripe_coupon_id or coupon.pk)
    with transaction.atomic():
        updated = Coupon.objects.filter(pk=coupon.pk, deleted_at__isnull=True).update(
            deleted_at=timezone.now()
        )
        if updated:
            audit_coupon(actor=actor, coupon=coupon, action="coupon.deleted", before=coupon_snapshot(coupon))
    coupon.refresh_from_db()
    return coupon


def promotion_code_create(
    *,
    project: Project,
    actor: Actor,
    coupon: Coupon,
    code: str,
    max_redemptions: int | None = None,
    expires_at: datetime | None = None,
    first_time_transaction: bool = False,
    active: bool = True,
    operation: Operation | None = None,
) -> PromotionCode:
    """Creates the promotion code at Stripe, then ours. Codes are unique per project in any case; on a Stripe
    account shared by several projects, Stripe also refuses a code another project holds active. A retry of
    the same `operation` sends Stripe the same request under the same key (Stripe answers its first code
    again instead of refusing it as taken) and answers the code its first attempt saved."""
    promo_id = operation.object_id("pcode") if operation else new_id("pcode")
    if operation and (done := PromotionCode.objects.filter(pk=promo_id, project=project).first()) is not None:
        return done
    if coupon.project_id != project.pk or coupon.deleted_at is not None:
        raise InvalidRequest(f"No such coupon: {coupon.pk!r}.", code="resource_missing", param="coupon")
    refuse_held_first_elsewhere(coupon, project=project, param="coupon")  # a copy of another project's: 404
    if promotion_code_by_code(project=project, code=code) is not None:
        raise Conflict(f"A promotion code {code!r} already exists.", code="code_taken", param="code")
    if expires_at is not None:
        if expires_at <= timezone.now():
            raise InvalidRequest(
                "expires_at must be in the future.", code="invalid_parameter", param="expires_at"
            )
        if coupon.redeem_by is not None and expires_at > coupon.redeem_by:
            raise InvalidRequest(
                "expires_at cannot be after the coupon's redeem_by.",
                code="invalid_parameter",
                param="expires_at",
            )
    if max_redemptions and coupon.max_redemptions and max_redemptions > coupon.max_redemptions:
        raise InvalidRequest(
            "max_redemptions cannot exceed the coupon's max_redemptions.",
            code="invalid_parameter",
            param="max_redemptions",
        )
    promo = PromotionCode(
        id=promo_id,
        project=project,
        coupon=coupon,
        code=code,
        max_redemptions=max_redemptions,
        expires_at=expires_at,
        first_time_transaction=first_time_transaction,
        active=active,
    )
    params: dict[str, Any] = {
        "promotion": {"type": "coupon", "coupon": coupon.stripe_coupon_id},
        "code": code,
        "active": active,
        "metadata": {"tollgate_project": project.pk, "tollgate_promotion_code": promo.pk},
    }
    if max_redemptions:
        params["max_redemptions"] = max_redemptions
    if expires_at is not None:
        params["expires_at"] = int(expires_at.timestamp())
    if first_time_transaction:
        params["restrictions"] = {"first_time_transaction": True}
    gateway = gateway_for(project)
    try:
        stripe_promo = gateway.promotion_code_create(
            params=params, idem=idempotency_key("promotion_code", promo.pk, "create")
        )
    except ProviderError as exc:
        if exc.code == "provider_invalid_request":
            raise Conflict(
                f"Stripe refused the code {code!r}: {exc.message}", code="code_taken", param="code"
            ) from exc
        raise
    promo.stripe_promotion_code_id = stripe_promo["id"]
    try:
        with transaction.atomic():
            promo.save(force_insert=True)
            _audit_promo(actor, promo, "promotion_code.created", None, promotion_code_snapshot(promo))
    except IntegrityError as exc:
        gateway.promotion_code_update(stripe_promo["id"], {"active": False})
        raise Conflict(f"A promotion code {code!r} already exists.", code="code_taken", param="code") from exc
    return promo


def _audit_promo(
    actor: Actor,
    promo: PromotionCode,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    audit_record(actor=actor, action=action, target=promo, project=promo.project, before=before, after=after)


def promotion_code_update(*, actor: Actor, promo: PromotionCode, active: bool) -> PromotionCode:
    """Turns a code on or off, at Stripe first."""
    refuse_held_first_elsewhere(promo, project=promo.project)  # a copy of another project's code, or
    refuse_held_first_elsewhere(promo.coupon, project=promo.project)  # of its coupon: 404
    if promo.active == active:
        return promo
    gateway_for(promo.project).promotion_code_update(promo.stripe_promotion_code_id, {"active": active})
    before = promotion_code_snapshot(promo)
    with transaction.atomic():
        PromotionCode.objects.filter(pk=promo.pk).update(active=active, updated_at=timezone.now())
        promo.refresh_from_db()
        _audit_promo(actor, promo, "promotion_code.updated", before, promotion_code_snapshot(promo))
    return promo


def _invalid(code: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"The promotion code {code!r} cannot be used: {why}.",
        code="promotion_code_invalid",
        param="promotion_code",
    )


def promotion_code_redeemable(
    *, project: Project, code: str, customer_external_id: str, currency: str
) -> PromotionCode:
    """The project's promotion code `code` if a purchase by this customer in `currency` may redeem it now;
    else 400 `promotion_code_invalid` (unknown, inactive, expired, used up, coupon gone or in another
    currency, not a first purchase). Redemption counts are Stripe's, read here; nothing is written. Every
    purchase path (checkout, `POST /payments`, `POST|PATCH /subscriptions`) calls this before writing."""
    promo = promotion_code_by_code(project=project, code=code)
    if promo is None or held_first_elsewhere(promo, project=project, field="stripe_promotion_code_id"):
        raise _invalid(code, "no such code")
    coupon = promo.coupon
    now = timezone.now()
    if not promo.active:
        raise _invalid(code, "it is inactive")
    if promo.expires_at is not None and promo.expires_at <= now:
        raise _invalid(code, "it has expired")
    if coupon.deleted_at is not None or (coupon.redeem_by is not None and coupon.redeem_by <= now):
        raise _invalid(code, "its coupon is no longer valid")
    if coupon.amount_off is not None and coupon.currency != currency.lower():
        raise _invalid(code, f"it is for purchases in {coupon.currency.upper()}")
    if promo.first_time_transaction:
        customer = Customer.objects.filter(project=project, external_id=customer_external_id).first()
        if (
            customer is not None
            and Payment.objects.filter(customer=customer, status__in=Payment.PAID_STATUSES).exists()
        ):
            raise _invalid(code, "it is for a first purchase only")
    stripe_promo = gateway_for(project).promotion_code_retrieve(promo.stripe_promotion_code_id)
    stripe_coupon = (stripe_promo.get("promotion") or {}).get("coupon") or {}
    limit = stripe_promo.get("max_redemptions")
    if named_elsewhere(stripe_promo, project_id=project.pk):  # another project's code: never redeemed here
        raise _invalid(code, "no such code")
    if not stripe_promo.get("active"):
        raise _invalid(code, "it is inactive")
    if limit is not None and int(stripe_promo.get("times_redeemed") or 0) >= int(limit):
        raise _invalid(code, "it has been used up")
    if isinstance(stripe_coupon, dict) and not stripe_coupon.get("valid", True):
        raise _invalid(code, "its coupon has been used up")
    return promo


def stripe_discounts(promo: PromotionCode | None) -> list[dict[str, str]]:
    """The Stripe `discounts` of a purchase that redeems `promo` (none: [])."""
    return [{"promotion_code": promo.stripe_promotion_code_id}] if promo is not None else []


def subscription_discount_params(
    *, project: Project, promotion_code: str | None, customer_external_id: str, currency: str
) -> dict[str, Any]:
    """For server-side subscription writes (`POST /subscriptions`, `PATCH /subscriptions/{id}`): the Stripe
    params that apply the tenant's `promotion_code` (checked first: 400 `promotion_code_invalid`), or {}."""
    if not promotion_code:
        return {}
    promo = promotion_code_redeemable(
        project=project, code=promotion_code, customer_external_id=customer_external_id, currency=currency
    )
    return {"discounts": stripe_discounts(promo)}


def purchase_promotion_code(*, project: Project, request: "PaymentRequest") -> PromotionCode | None:
    """The promotion code a purchase redeems (checked: 400 `promotion_code_invalid`), or None. A
    PaymentIntent carries no discount at Stripe, so the intent flow refuses one; `promotion_code` and
    `allow_promotion_codes` together are refused as Stripe refuses `discounts` with `allow_promotion_codes`.
    On the platform's shared Stripe account `allow_promotion_codes` is refused (400
    `promotion_codes_need_own_account`): Stripe's code field accepts any active code of the account, another
    project's too, and applies it before Tollgate could check it."""
    if request.promotion_code and request.allow_promotion_codes:
        raise InvalidRequest(
            "Give either promotion_code or allow_promotion_codes, not both.",
            code="parameter_conflict",
            param="allow_promotion_codes",
        )
    if request.flow != Payment.Flow.CHECKOUT and (request.promotion_code or request.allow_promotion_codes):
        raise InvalidRequest(
            "Discounts apply through Stripe Checkout only (a PaymentIntent has none): use flow 'checkout'.",
            code="flow_not_supported",
            param="promotion_code" if request.promotion_code else "allow_promotion_codes",
        )
    if request.allow_promotion_codes and not project.stripe_secret_key:
        raise InvalidRequest(
            "allow_promotion_codes needs the project's own Stripe account: on the platform's shared one, "
            "Stripe's page would accept other projects' codes too. Pass the customer's code as "
            "promotion_code (checked against this project's codes), or give the project its own Stripe key.",
            code="promotion_codes_need_own_account",
            param="allow_promotion_codes",
        )
    if not request.promotion_code:
        return None
    return promotion_code_redeemable(
        project=project,
        code=request.promotion_code,
        customer_external_id=request.customer,
        currency=request.currency,
    )


def checkout_discount_params(payment: Payment) -> dict[str, Any]:
    """What a payment's Checkout Session takes for its discount: the code redeemed, or the code field."""
    if payment.promotion_code is not None:
        return {"discounts": stripe_discounts(payment.promotion_code)}
    if payment.allow_promotion_codes:
        return {"allow_promotion_codes": True}
    return {}
