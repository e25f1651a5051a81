"""What a Stripe event is about, among billing's rows: the payment, the invoice, the customer.

Events are routed by the Stripe ids we already hold (checkout session, payment intent, charge), and only then
by our metadata: renewal invoices and their payments carry none of it. Shared by the handlers of
`billing.handlers`; `stripe_customer_of` also routes the inbox's events to their customer's ordering key.
"""

from collections.abc import Collection
from typing import Any, TypeVar

from django.db.models import Q, QuerySet

from billing import statements
from billing.handlers.event import StripeEventIn
from billing.models import Invoice, Payment
from billing.services.invoices import invoice_link_payment_intent
from core.context import subjects_note
from core.statements import Statement
from customers.services.customers import customer_for_stripe
from projects.models import Project
from stripe_gateway.gateway import PLATFORM_ACCOUNT, StripeGateway, gateway_for, platform_gateway, stripe_id
from stripe_gateway.read_limit import stripe_read_allowed

M = TypeVar("M", Payment, Invoice)
R = TypeVar("R")


def _payments() -> QuerySet[Payment]:
    return Payment.objects.select_related("project", "customer")


def payments_of_account(event: StripeEventIn) -> QuerySet[Payment]:
    """Payments that can belong to the account the event came from."""
    if event.account == PLATFORM_ACCOUNT:
        return _payments().filter(project__stripe_secret_key="")
    return _payments().filter(project_id=event.account)


def _account_first(
    pair: tuple[Statement[R], Statement[R]], event: StripeEventIn | str, **values: str
) -> R | None:
    """The first row of a `billing.statements` pair for the event's account (the platform's, or a project's)."""
    account = event if isinstance(event, str) else event.account
    if account == PLATFORM_ACCOUNT:
        return pair[0].first(**values)
    return pair[1].first(account=account, **values)


def invoice_of_account(event: StripeEventIn, *, stripe_invoice_id: str) -> Invoice | None:
    """The invoice of that Stripe id that can belong to the event's account, with the columns routing reads."""
    return _account_first(statements.INVOICE_BY["stripe_invoice_id"], event, value=stripe_invoice_id)


def payment_for(
    event: StripeEventIn,
    *,
    session: str = "",
    intent: str = "",
    metadata: dict[str, Any] | None = None,
    ask_stripe: bool = False,
) -> Payment | None:
    """The payment an event is about: by the Stripe ids we hold, then our metadata, then (an invoice's intent,
    which carries neither) the invoice that the intent paid — known locally, or, with `ask_stripe`, read from
    Stripe's /v1/invoice_payments. The link found is recorded on the payment."""
    conditions = {"session": session, "intent": intent} if session and intent else {}
    payment = None
    if conditions:
        payment = _account_first(statements.PAYMENT_BY_SESSION_OR_INTENT, event, **conditions)
    elif session or intent:
        by = statements.PAYMENT_BY["stripe_checkout_session_id" if session else "stripe_payment_intent_id"]
        payment = _account_first(by, event, value=session or intent)
    if payment is None and metadata and metadata.get("tollgate_payment"):
        payment = _account_first(statements.PAYMENT_BY["pk"], event, value=metadata["tollgate_payment"])
    if payment is None and intent:
        invoice = _account_first(statements.INVOICE_BY["stripe_payment_intent_id"], event, value=intent)
        if invoice is None and ask_stripe:
            invoice_id = _intent_invoice(event, intent)
            invoice = invoice_of_account(event, stripe_invoice_id=invoice_id) if invoice_id else None
            if invoice is not None:
                invoice_link_payment_intent(invoice=invoice, payment_intent_id=intent)
            elif invoice_id and _ours(event):
                # Stripe's invoice of one of our customers, whose own events are still on their way: apply
                # this one after them (a retry), rather than lose what it says.
                raise NotYetMirrored(f"Invoice {invoice_id} is not mirrored yet.")
        if invoice is not None:
            payment = (
                payments_of_account(event)
                .filter(project_id=invoice.project_id, stripe_invoice_id=invoice.stripe_invoice_id)
                .first()
            )
    if payment is not None and intent and not payment.stripe_payment_intent_id:
        Payment.objects.filter(pk=payment.pk, stripe_payment_intent_id="").update(
            stripe_payment_intent_id=intent
        )
        payment.stripe_payment_intent_id = intent
    if payment is not None:
        subjects_note(
            project=payment.project.slug,
            customer=payment.customer.external_id,
            payment=payment.pk,
            reference=payment.reference,
        )
    return payment


def stripe_customer_of(*, account: str, stripe_object_id: str) -> str:
    """The Stripe id of the customer that one of our invoices (`in_…`) or payment intents (`pi_…`) belongs to,
    as the mirror knows it; "" when it is not ours, not mirrored yet, or a guest's. Routes the events whose
    body names no customer (an invoice's payment record, a dispute) to their customer's ordering key."""
    found: str | None = None
    if stripe_object_id.startswith("in_"):
        found = _account_first(
            statements.STRIPE_CUSTOMER_OF[Invoice, "stripe_invoice_id"], account, value=stripe_object_id
        )
    elif stripe_object_id.startswith("pi_"):
        found = _account_first(
            statements.STRIPE_CUSTOMER_OF[Payment, "stripe_payment_intent_id"],
            account,
            value=stripe_object_id,
        ) or _account_first(
            statements.STRIPE_CUSTOMER_OF[Invoice, "stripe_payment_intent_id"],
            account,
            value=stripe_object_id,
        )
    return found or ""


def stripe_customers_of(*, account: str, stripe_object_ids: Collection[str]) -> dict[str, str]:
    """`stripe_customer_of` for many invoices and payment intents at once, in at most three queries (one per
    kind of row that can know it): each id the mirror knows, with its customer's Stripe id."""
    scope = Q(project__stripe_secret_key="") if account == PLATFORM_ACCOUNT else Q(project_id=account)
    invoices = [i for i in stripe_object_ids if i.startswith("in_")]
    intents = [i for i in stripe_object_ids if i.startswith("pi_")]
    found: dict[str, str] = {}
    for model, field, ids in (
        (Invoice, "stripe_invoice_id", invoices),
        (Payment, "stripe_payment_intent_id", intents),
        (Invoice, "stripe_payment_intent_id", intents),
    ):
        first: dict[str, str] = {}
        if ids:
            rows = model.objects.filter(scope, **{f"{field}__in": ids}).order_by("pk")
            for stripe_object_id, customer in rows.values_list(field, "customer__stripe_customer_id"):
                first.setdefault(stripe_object_id, customer)
        # An intent's customer: its payment's, else its invoice's (as `stripe_customer_of`).
        for stripe_object_id, customer in first.items():
            if customer and not found.get(stripe_object_id):
                found[stripe_object_id] = customer
    return found


class NotYetMirrored(Exception):
    """The event is about an object of ours whose mirror does not exist yet: it is retried later."""


def _ours(event: StripeEventIn) -> bool:
    """Whether the event's object belongs to one of our customers (objects without a customer: assumed)."""
    customer = stripe_id(event.data_object.get("customer"))
    if not customer:
        return True
    return customer_for_stripe(account=event.account, stripe_customer_id=customer) is not None


def invoice_intent_link_told(
    event: StripeEventIn, invoice_id: str, *, invoice: Invoice | None = None
) -> None:
    """Records the PaymentIntent of an invoice on its mirror and payment when an `invoice_payment.*` event
    already told it (no Stripe read): that event may have arrived before the invoice or its payment existed.
    `invoice`: its mirror as the caller just applied it (not read again)."""
    if invoice is None:
        invoice = invoice_of_account(event, stripe_invoice_id=invoice_id)
    if invoice is None:
        return  # nothing to record it on: the invoice's own events ask when they mirror it
    intent = invoice.stripe_payment_intent_id or event.told_payment_intent(invoice_id)
    if intent:
        invoice_link_payment_intent(invoice=invoice, payment_intent_id=intent)


def _intent_invoice(event: StripeEventIn, intent: str) -> str:
    """The invoice a PaymentIntent paid (or tried to), read from Stripe."""
    stripe_read_allowed(event.account)
    listed = gateway_of(event).invoice_payments_list(payment_intent=intent)
    return next((stripe_id(record.get("invoice")) for record in listed if record.get("invoice")), "")


def gateway_of(event: StripeEventIn) -> StripeGateway:
    """The gateway of the Stripe account the event came from."""
    if event.project_id is None:
        return platform_gateway()
    return gateway_for(Project.objects.get(pk=event.project_id))


def invoice_payment_intent(event: StripeEventIn, invoice: Invoice, *, told: bool = False) -> str:
    """The PaymentIntent of an invoice's payment (invoices are paid through invoice_payments): known from an
    `invoice_payment.*` event already stored (`told`: asked already, by invoice_apply), else read from Stripe.
    A new one is recorded on the invoice; its payment gets it from invoice_payment_apply (`intent_learned`)."""
    if invoice.stripe_payment_intent_id:
        return invoice.stripe_payment_intent_id
    intent = "" if told else event.told_payment_intent(invoice.stripe_invoice_id)
    if not intent:
        stripe_read_allowed(event.account)
        for record in gateway_of(event).invoice_payments_list(invoice=invoice.stripe_invoice_id):
            intent = stripe_id((record.get("payment") or {}).get("payment_intent"))
            if intent:
                break
    invoice_link_payment_intent(invoice=invoice, payment_intent_id=intent, link_payment=False)
    return intent
