"""Auto-recharge charges (`entitlements.services.recharge` decides when): the attempt's payment is a one-time
payment of the recharge's price, charged off session to the customer's saved card, under the reference
`auto_recharge:<id>:<attempt>` — so a retry of the task, the sweep, or a process that died after Stripe acted
continues the one payment of that attempt (its PaymentIntent is created under a key derived from the payment).
The payment's transition settles the recharge: credits only once it succeeded.
"""

import logging
from datetime import timedelta

from django.utils import timezone

from billing import selectors
from billing.models import Payment
from billing.services.payment_create import payment_create, payment_start
from billing.services.payment_requests import Line, PaymentRequest
from billing.services.payment_transitions import payment_apply_intent
from core.errors import ApiError, ProviderError
from customers.services.customers import customer_ensure_stripe
from entitlements.models import AutoRecharge
from entitlements.services.recharge import recharge_end, recharge_payment_started, recharge_reference
from stripe_gateway.gateway import gateway_for

logger = logging.getLogger(__name__)

# Stripe unreachable, rate limiting or failing: the attempt is continued by the sweep.
TRANSIENT = ("provider_unavailable", "provider_rate_limited", "provider_error")
# An attempt still charging this long after it started is resumed by the sweep.
RESUME_AFTER = timedelta(seconds=60)


class ChargeInterrupted(Exception):
    """Stripe could not be reached for an attempt: the sweep continues it, under the same payment."""


def auto_recharge_charge(*, recharge_id: str) -> str:
    """Charges the recharge's current attempt, or continues it; 'charged', 'failed' (declined, no saved card, its
    price deactivated, refused by Stripe) or 'skipped' (nothing charging). Raises ChargeInterrupted when Stripe could not be
    reached."""
    recharge = (
        AutoRecharge.objects.select_related("project", "customer", "feature", "price")
        .filter(pk=recharge_id)
        .first()
    )
    if recharge is None or recharge.status != AutoRecharge.Status.CHARGING:
        return "skipped"
    project = recharge.project
    reference = recharge_reference(recharge)
    try:
        payment = selectors.payment_by_reference(project=project, reference=reference)
        if payment is None and not recharge.price.active:  # deactivated since it was configured: sold no more
            recharge_end(
                recharge_id=recharge.pk, attempt=recharge.attempt, payment_id="", error="price_inactive"
            )
            return "failed"
        if payment is None:
            card = recharge.payment_method or gateway_for(project).customer_saved_card(
                customer_ensure_stripe(customer=recharge.customer)
            )
            if not card:
                recharge_end(
                    recharge_id=recharge.pk, attempt=recharge.attempt, payment_id="", error="no_saved_card"
                )
                return "failed"
            price = recharge.price
            line = Line(
                price=price,
                quantity=recharge.quantity,
                unit_amount=price.unit_amount,
                currency=price.currency,
            )
            request = PaymentRequest(
                customer=recharge.customer.external_id,
                type=Payment.Type.ONE_TIME,
                flow=Payment.Flow.OFF_SESSION,
                lines=(line,),
                description=f"Auto-recharge of {recharge.feature.key}",
                metadata=(("tollgate_auto_recharge", recharge.pk),),
                payment_method=card,
            )
            payment, _ = payment_create(project=project, request=request, reference=reference)
        else:
            payment = payment_start(payment=payment)  # an earlier run could not reach Stripe: resumed
        recharge_payment_started(recharge=recharge, payment_id=payment.pk)
        if payment.is_open and payment.stripe_payment_intent_id:
            # Charged before, its outcome not applied here (a process died after Stripe acted): read it.
            intent = gateway_for(project).payment_intent_retrieve(payment.stripe_payment_intent_id)
            payment = payment_apply_intent(payment=payment, intent=intent)
    except ProviderError as error:
        if error.code in TRANSIENT:
            raise ChargeInterrupted(error.code) from error
        return _failed(recharge, error)
    except ApiError as error:
        return _failed(recharge, error)
    return (
        "failed"
        if payment.status in (Payment.Status.REQUIRES_PAYMENT_METHOD, Payment.Status.FAILED)
        else "charged"
    )


def _failed(recharge: AutoRecharge, error: ApiError) -> str:
    logger.warning("Auto-recharge %s attempt %s refused: %s", recharge.pk, recharge.attempt, error.code)
    payment_id = recharge.payment_id or ""
    recharge_end(recharge_id=recharge.pk, attempt=recharge.attempt, payment_id=payment_id, error=error.code)
    return "failed"


def auto_recharges_due() -> list[str]:
    """Recharges charging for longer than `RESUME_AFTER`: a task lost, retried out, or a process killed."""
    cutoff = timezone.now() - RESUME_AFTER
    return list(
        AutoRecharge.objects.filter(status=AutoRecharge.Status.CHARGING, charging_since__lt=cutoff)
        .order_by("charging_since")
        .values_list("pk", flat=True)[:100]
    )
