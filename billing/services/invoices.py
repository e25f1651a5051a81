"""The invoice mirror: Stripe invoices applied in Stripe's order (`invoice_apply`), their link to the
PaymentIntent that pays them, the local payment of an invoice and its settlement (`invoice_payment_apply`), and
the tenant events of an invoice (rendered by billing.representations.InvoiceOutput).
"""

from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import IntegrityError, connection, transaction

from billing import statements
from billing.models import Invoice, Payment, Subscription
from billing.representations import InvoiceOutput
from billing.services.entitlement_facts import plan_credits_grant
from billing.services.journal import journal_invoice
from billing.services.payment_transitions import payment_transition_locked
from core.context import subjects_note
from core.locks import lock_for_transaction
from customers.models import Customer
from customers.services.customers import customer_for_stripe
from events.services.record import event_record
from stripe_gateway.gateway import StripeGateway, from_timestamp, stripe_id
from stripe_gateway.read_limit import stripe_read_allowed


def _invoice_object(invoice: Invoice) -> dict[str, Any]:
    """The `data.object` of an invoice event: the API representation of `invoice` (customer loaded)."""
    return dict(InvoiceOutput(invoice).data)


def invoice_lines(stripe_invoice: dict[str, Any]) -> list[dict[str, Any]]:
    """A Stripe invoice's lines as Tollgate shows them (`Invoice.lines`, a preview's lines)."""
    lines = []
    for line in (stripe_invoice.get("lines") or {}).get("data") or []:
        details = _line_details(line)
        pricing = line.get("pricing") or {}
        price_details = pricing.get("price_details") or {}
        lines.append(
            {
                # Stripe's id of the line: a credit note names the lines it credits by it.
                "stripe_line_id": line.get("id") or None,
                # A line of an invoice item (added to the invoice, a proration) or of a subscription's item.
                "type": "invoice_item" if line_invoice_item(line) else "subscription_item",
                "description": line.get("description") or "",
                "amount": int(line.get("amount") or 0),
                "currency": line.get("currency"),
                "quantity": line.get("quantity"),
                "proration": bool(details.get("proration")),
                "stripe_price_id": stripe_id(price_details.get("price")) or None,
                "period_start": (line.get("period") or {}).get("start"),
                "period_end": (line.get("period") or {}).get("end"),
            }
        )
    return lines


def _line_details(line: dict[str, Any]) -> dict[str, Any]:
    """What a Stripe invoice line says of what it bills: a subscription item's line, or an invoice item's."""
    parent = line.get("parent") or {}
    return parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}


def line_invoice_item(line: dict[str, Any]) -> str:
    """The invoice item a Stripe invoice line bills (an item added to the invoice, a proration); "" for a
    subscription item's own line."""
    return stripe_id(_line_details(line).get("invoice_item"))


def invoice_subscription_id(stripe_invoice: dict[str, Any]) -> str:
    parent = stripe_invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return stripe_id(details.get("subscription"))


# An invoice only moves forward: draft → open → uncollectible → paid | void. A lower rank is always an older
# state, whatever the event's second says; an equal rank is applied when not older (amounts, attempts).
INVOICE_RANK = {"draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3}
# The statuses announced to the tenant as the mirror reaches them (each at most once per invoice: no status is
# reached twice).
INVOICE_ANNOUNCED = {
    "paid": "invoice.paid",
    "void": "invoice.voided",
    "uncollectible": "invoice.marked_uncollectible",
}


class DraftAmbiguous(Exception):
    """Two events of one draft invoice in the same second that say different things (its lines changed twice
    within a second, the events delivered in either order): only Stripe knows which is current."""


def invoice_apply(
    *,
    account: str,
    stripe_invoice: dict[str, Any],
    event_created: int,
    force: bool = False,
    told_payment_intent: Callable[[str], str] | None = None,
) -> Invoice | None:
    """Applies Stripe's invoice to its mirror (created on first sight) when it is at least as new as the
    mirror (`force`: a fresh read from Stripe, applied whatever it says). Returns None for invoices not ours.
    Raises DraftAmbiguous for a draft's event as old as the last applied one that says something else.
    `told_payment_intent`: asked, when the mirror knows no PaymentIntent yet, for the one an `invoice_payment.*`
    event already told (no Stripe read); recorded with the invoice."""
    customer = customer_for_stripe(
        account=account, stripe_customer_id=stripe_id(stripe_invoice.get("customer"))
    )
    if customer is None:
        return None
    apply = partial(
        _invoice_mirror,
        customer=customer,
        stripe_invoice=stripe_invoice,
        event_created=event_created,
        force=force,
        told_payment_intent=told_payment_intent,
    )
    try:
        return apply()
    except IntegrityError:  # created concurrently by another event of the same invoice: apply again
        return apply()


def _link_lock(project_id: str, stripe_subscription_id: str) -> str:
    return f"invoices-of:{project_id}:{stripe_subscription_id}"


def _subscription_of_new_invoice(*, project_id: str, stripe_subscription_id: str) -> str | None:
    """The mirror of a new invoice's subscription (None: no subscription, or not mirrored yet). Not mirrored yet,
    it is read again under the lock `invoices_link_subscription` holds while it links the invoices that came
    first: that read sees the subscription, or that link sees this invoice. Without the lock both transactions
    could read before either committed (a worker applies the first invoice's events while the web, answering a
    subscribe, mirrors the subscription it created), and the invoice and its payment would stay unlinked."""
    if not stripe_subscription_id:
        return None
    found = statements.SUBSCRIPTION_PK.first(
        project_id=project_id, stripe_subscription_id=stripe_subscription_id
    )
    if found is None:
        lock_for_transaction(_link_lock(project_id, stripe_subscription_id))
        found = statements.SUBSCRIPTION_PK.first(
            project_id=project_id, stripe_subscription_id=stripe_subscription_id
        )
    return found


def _subscription_of_new_payment(invoice: Invoice) -> str:
    """The Stripe subscription the invoice's payment names when it has none yet: the invoice's, once its mirror
    is linked. An invoice read unlinked may have been linked since by `invoices_link_subscription`, which links
    the payments of the invoices it links but cannot see one created now: read again under its lock."""
    if invoice.subscription_id is not None:
        return invoice.stripe_subscription_id
    if not invoice.stripe_subscription_id:
        return ""
    lock_for_transaction(_link_lock(invoice.project_id, invoice.stripe_subscription_id))
    linked = statements.SUBSCRIPTION_PK.first(
        project_id=invoice.project_id, stripe_subscription_id=invoice.stripe_subscription_id
    )
    return invoice.stripe_subscription_id if linked is not None else ""


def invoices_link_subscription(subscription: Subscription) -> None:
    """Links a new subscription's mirror to its invoices mirrored before it (its first invoice and that
    invoice's payment usually arrive first), under the lock a new invoice's read of its subscription takes."""
    lock_for_transaction(_link_lock(subscription.project_id, subscription.stripe_subscription_id))
    linked = Invoice.objects.filter(
        project=subscription.project_id,
        stripe_subscription_id=subscription.stripe_subscription_id,
        subscription__isnull=True,
    ).update(subscription=subscription)
    if not linked:  # a new subscription has no other invoices
        return
    Payment.objects.filter(
        project=subscription.project_id,
        stripe_subscription_id="",
        stripe_invoice_id__in=Invoice.objects.filter(subscription=subscription).values("stripe_invoice_id"),
    ).update(stripe_subscription_id=subscription.stripe_subscription_id)


def _invoice_mirror(
    *,
    customer: Customer,
    stripe_invoice: dict[str, Any],
    event_created: int,
    force: bool,
    told_payment_intent: Callable[[str], str] | None,
) -> Invoice:
    project = customer.project
    stripe_subscription_id = invoice_subscription_id(stripe_invoice)
    fields = _invoice_fields(stripe_invoice, customer=customer)
    with transaction.atomic():
        invoice, mirrored_subscription_id = _invoice_locked(
            project_id=project.pk,
            stripe_invoice_id=stripe_invoice["id"],
            stripe_subscription_id=stripe_subscription_id,
        )
        status_before = invoice.status if invoice is not None else None
        intent = ""
        if told_payment_intent is not None and (invoice is None or not invoice.stripe_payment_intent_id):
            intent = told_payment_intent(stripe_invoice["id"])
        if invoice is None:
            # No savepoint: an invoice created meanwhile fails the whole block, and invoice_apply applies again.
            invoice = Invoice.objects.create(
                project=project,
                stripe_invoice_id=stripe_invoice["id"],
                customer=customer,
                subscription_id=_subscription_of_new_invoice(
                    project_id=project.pk, stripe_subscription_id=stripe_subscription_id
                ),
                stripe_payment_intent_id=intent,
                stripe_event_created=event_created,
                **fields,
            )
        else:
            invoice.project = project  # already loaded: no lazy query for what follows
            if invoice.customer_id == customer.pk:
                invoice.customer = customer
            changed: dict[str, Any] = {"stripe_payment_intent_id": intent} if intent else {}
            applied = invoice_is_newer(invoice, stripe_invoice, event_created, force=force)
            if applied and _draft_ambiguous(invoice, fields, event_created, force=force):
                raise DraftAmbiguous(stripe_invoice["id"])
            if applied:
                changed.update(
                    (name, value) for name, value in fields.items() if getattr(invoice, name) != value
                )
                if invoice.customer_id != customer.pk:
                    changed["customer"] = customer
                # None keeps the link made when the subscription arrived.
                if (
                    mirrored_subscription_id is not None
                    and mirrored_subscription_id != invoice.subscription_id
                ):
                    changed["subscription_id"] = mirrored_subscription_id
                if event_created > invoice.stripe_event_created:
                    changed["stripe_event_created"] = event_created
            for name, value in changed.items():
                setattr(invoice, name, value)
            if changed:  # an apply that changes nothing writes nothing (updated_at: the last change)
                invoice.save(update_fields=[*changed, "updated_at"] if applied else list(changed))
        journal_invoice(invoice)
        announced = INVOICE_ANNOUNCED.get(invoice.status)
        # Once per invoice, under its row lock. A void or uncollectible invoice is announced as it becomes so, not
        # when first seen so (an adopted account's history, an expired subscription's first invoice).
        if announced and status_before != invoice.status and (status_before or invoice.status == "paid"):
            event_record(
                project=project,
                type=announced,
                data_object=_invoice_object(
                    invoice
                    if invoice.customer_id == customer.pk
                    else Invoice.objects.select_related("customer").get(pk=invoice.pk)
                ),
            )
    return invoice


def _draft_ambiguous(invoice: Invoice, fields: dict[str, Any], event_created: int, *, force: bool) -> bool:
    """Whether a draft's event of the mirror's own second says something else than the mirror: a draft's lines
    change at any rate (an operator's two edits within a second), so which of the two is newer only Stripe knows.
    Any other status moves forward only, and a later one is never applied over by an older event."""
    return (
        not force
        and invoice.status == fields["status"] == "draft"
        and event_created == invoice.stripe_event_created
        and any(getattr(invoice, name) != value for name, value in fields.items())
    )


def invoice_refetch_and_apply(
    *, account: str, gateway: StripeGateway, stripe_invoice_id: str, event_created: int = 0
) -> Invoice | None:
    """Applies Stripe's current state of the invoice, stamped with Stripe's clock as of the read (read first): an
    event older than that, arriving later, describes an older state and is not applied over it."""
    test_clock = Invoice.objects.filter(stripe_invoice_id=stripe_invoice_id).values_list(
        "customer__test_clock__stripe_test_clock_id", flat=True
    )[:1]
    stripe_read_allowed(account)
    as_of = gateway.clock(next(iter(test_clock), None) or "")
    stripe_read_allowed(account)
    fresh = gateway.invoice_retrieve(stripe_invoice_id)
    return invoice_apply(
        account=account, stripe_invoice=fresh, event_created=max(event_created, as_of), force=True
    )


def _invoice_locked(
    *, project_id: str, stripe_invoice_id: str, stripe_subscription_id: str
) -> tuple[Invoice | None, str | None]:
    """The invoice's mirror under its row lock (None: not mirrored yet) and, read with it, the mirror of its
    subscription (None: not mirrored yet, or no subscription). Every `invoice.*` event reads them: one statement
    written out by hand, because the ORM's building of this locked read with its subquery cost more than the read
    itself."""
    invoices, subscriptions = Invoice._meta.db_table, Subscription._meta.db_table
    mirrored, params = "NULL", list[str]()
    if stripe_subscription_id:
        mirrored = (
            f"(SELECT s.id FROM {subscriptions} s WHERE s.project_id = i.project_id "  # noqa: S608 (the models' tables)
            "AND s.stripe_subscription_id = %s LIMIT 1)"
        )
        params.append(stripe_subscription_id)
    lock = " FOR UPDATE OF i" if connection.features.has_select_for_update_of else ""
    found = list(
        Invoice.objects.raw(
            f"SELECT i.*, {mirrored} AS mirrored_subscription_id FROM {invoices} i "  # noqa: S608 (the models' tables)
            f"WHERE i.project_id = %s AND i.stripe_invoice_id = %s{lock}",
            [*params, project_id, stripe_invoice_id],
        )
    )
    if not found:
        return None, None
    return found[0], found[0].__dict__.pop("mirrored_subscription_id")


def _invoice_fields(stripe_invoice: dict[str, Any], *, customer: Customer) -> dict[str, Any]:
    """The mirror's columns that Stripe's invoice decides (the customer and the subscription aside)."""
    return {
        "stripe_subscription_id": invoice_subscription_id(stripe_invoice),
        "number": stripe_invoice.get("number") or "",
        "status": stripe_invoice.get("status") or "draft",
        "billing_reason": stripe_invoice.get("billing_reason") or "",
        "currency": stripe_invoice.get("currency") or customer.currency,
        "subtotal": int(stripe_invoice.get("subtotal") or 0),
        "discount": sum(
            int(d.get("amount") or 0) for d in stripe_invoice.get("total_discount_amounts") or []
        ),
        "tax": sum(int(t.get("amount") or 0) for t in stripe_invoice.get("total_taxes") or []),
        "total": int(stripe_invoice.get("total") or 0),
        "amount_due": int(stripe_invoice.get("amount_due") or 0),
        "amount_paid": int(stripe_invoice.get("amount_paid") or 0),
        "amount_remaining": int(stripe_invoice.get("amount_remaining") or 0),
        "balance_applied": int(stripe_invoice.get("ending_balance") or 0)
        - int(stripe_invoice.get("starting_balance") or 0)
        if stripe_invoice.get("ending_balance") is not None
        else 0,
        "period_start": from_timestamp(stripe_invoice.get("period_start")),
        "period_end": from_timestamp(stripe_invoice.get("period_end")),
        "paid_at": from_timestamp((stripe_invoice.get("status_transitions") or {}).get("paid_at")),
        "hosted_invoice_url": stripe_invoice.get("hosted_invoice_url") or "",
        "invoice_pdf": stripe_invoice.get("invoice_pdf") or "",
        "lines": invoice_lines(stripe_invoice),
    }


def invoice_is_newer(
    invoice: Invoice, stripe_invoice: dict[str, Any], event_created: int, *, force: bool = False
) -> bool:
    """Whether Stripe's invoice (as of `event_created`) is at least as new as the mirror. `force` (a fresh read
    from Stripe) is applied whatever its time says, but never over a later status: a read taken before the
    invoice was paid or voided (a reconciliation's page read before a correction) is older whatever it says."""
    incoming = INVOICE_RANK.get(str(stripe_invoice.get("status") or "draft"), 0)
    held = INVOICE_RANK.get(invoice.status, 0)
    if incoming != held:
        return incoming > held
    return force or event_created >= invoice.stripe_event_created


def invoice_link_payment_intent(
    *, invoice: Invoice, payment_intent_id: str, link_payment: bool = True
) -> None:
    """Records the PaymentIntent of the invoice's payment attempt, on the invoice and on its payment
    (`link_payment=False`: left to invoice_payment_apply, told `intent_learned`)."""
    if not payment_intent_id:
        return
    Invoice.objects.filter(pk=invoice.pk).exclude(stripe_payment_intent_id=payment_intent_id).update(
        stripe_payment_intent_id=payment_intent_id
    )
    if link_payment:
        Payment.objects.filter(
            project=invoice.project_id,
            stripe_invoice_id=invoice.stripe_invoice_id,
            stripe_payment_intent_id="",
        ).update(stripe_payment_intent_id=payment_intent_id)


def invoice_payment_apply(
    *,
    invoice: Invoice,
    stripe_invoice: dict[str, Any],
    payment_intent_id: str,
    paid: bool,
    intent_learned: bool = False,
) -> Payment:
    """The one payment of an invoice: the checkout's payment for a first invoice, else a `source: invoice`
    payment (renewals, prorations). Unique per invoice, so every path that learns of it applies it once.
    `intent_learned`: `payment_intent_id` was just linked to the invoice alone (`invoice_link_payment_intent`
    with `link_payment=False`, or invoice_apply's `told_payment_intent`); its payment gets it first, as the link
    would have given it."""
    subscription_metadata = ((stripe_invoice.get("parent") or {}).get("subscription_details") or {}).get(
        "metadata"
    ) or {}
    # The invoice's Stripe subscription, once its mirror is linked (the link is made by that same id).
    stripe_subscription_id = invoice.stripe_subscription_id if invoice.subscription_id is not None else ""
    found = statements.INVOICE_PAYMENT.first(
        project_id=invoice.project_id, stripe_invoice_id=invoice.stripe_invoice_id
    )
    if (
        intent_learned
        and payment_intent_id
        and found is not None
        and not found.is_open
        and not found.stripe_payment_intent_id
    ):
        # What the link would have recorded before this call (an open payment gets it with its transition).
        if Payment.objects.filter(pk=found.pk, stripe_payment_intent_id="").update(
            stripe_payment_intent_id=payment_intent_id
        ):
            found.stripe_payment_intent_id = payment_intent_id
        else:  # given another one meanwhile
            found = Payment.objects.filter(pk=found.pk).first()
    settled = found if found is not None and not found.is_open else None
    if (
        settled is not None
        and (settled.stripe_payment_intent_id or not payment_intent_id)
        and (settled.stripe_subscription_id or invoice.subscription_id is None)
    ):
        # A settled payment changes only through refunds and disputes: Stripe said it already. The period it
        # paid may still lack its plan credits (Checkout settled it before the invoice was mirrored).
        if paid:
            plan_credits_grant(payment=settled, invoice=invoice)
        subjects_note(payment=settled.pk, reference=settled.reference)  # the event's log line names it
        return settled
    links: dict[str, Any] = {}
    with transaction.atomic():
        # None read above: none to lock (one created meanwhile fails the creation below, which then reads it).
        payment = (
            statements.INVOICE_PAYMENT_LOCKED.first(
                project_id=invoice.project_id, stripe_invoice_id=invoice.stripe_invoice_id
            )
            if found is not None
            else None
        )
        if payment is None:  # before any row lock: it may take a lock a new subscription holds
            stripe_subscription_id = _subscription_of_new_payment(invoice)
        if payment is None and invoice.billing_reason == "subscription_create":
            payment = statements.CHECKOUT_PAYMENT_LOCKED.first(
                project_id=invoice.project_id, pk=subscription_metadata.get("tollgate_payment") or "-"
            )
            if payment is None and stripe_subscription_id:
                payment = statements.SUBSCRIPTION_PAYMENT_LOCKED.first(
                    project_id=invoice.project_id, stripe_subscription_id=stripe_subscription_id
                )
            if payment is not None:  # recorded with what the transition below changes
                links["stripe_invoice_id"] = invoice.stripe_invoice_id
        if payment is None:
            try:
                with transaction.atomic():
                    payment = Payment.objects.create(
                        project=invoice.project,
                        customer=invoice.customer,
                        type=Payment.Type.SUBSCRIPTION,
                        flow=Payment.Flow.INTENT,
                        source=Payment.Source.INVOICE,
                        amount=invoice.amount_due,
                        currency=invoice.currency,
                        description=f"Invoice {invoice.number}".strip(),
                        stripe_invoice_id=invoice.stripe_invoice_id,
                        stripe_subscription_id=stripe_subscription_id,
                        stripe_payment_intent_id=payment_intent_id,
                    )
            except IntegrityError:  # another event created it meanwhile: locked, as the read above would have
                payment = Payment.objects.select_for_update().get(
                    project=invoice.project, stripe_invoice_id=invoice.stripe_invoice_id
                )
        _with_invoice_holders(payment, invoice)
        if payment_intent_id and not payment.stripe_payment_intent_id:
            links["stripe_payment_intent_id"] = payment_intent_id
        if stripe_subscription_id and not payment.stripe_subscription_id:
            links["stripe_subscription_id"] = stripe_subscription_id
        status = Payment.Status.SUCCEEDED if paid else Payment.Status.REQUIRES_PAYMENT_METHOD
        # Stripe's invoice decides, never a local row that may be older: a paid invoice's amount_paid is final.
        if paid and int(stripe_invoice.get("amount_paid") or 0) == 0:
            status = Payment.Status.NO_PAYMENT_REQUIRED
        if (
            payment.source == Payment.Source.INVOICE
            and payment.amount != invoice.amount_due
            and payment.is_open
        ):
            links["amount"] = invoice.amount_due
        if payment.amount_tax != invoice.tax and (payment.source == Payment.Source.INVOICE or invoice.tax):
            links["amount_tax"] = invoice.tax  # Stripe Tax: the invoice's taxes are the payment's
        if payment.amount_discount != invoice.discount and (
            payment.source == Payment.Source.INVOICE or invoice.discount
        ):
            links["amount_discount"] = invoice.discount  # what the invoice's discounts took off
        status_before = payment.status
        # The payment is under its row lock since it was read (or created) in this transaction.
        if payment.is_open:  # links and status in one transition
            payment = payment_transition_locked(
                payment=payment, allowed_from=Payment.OPEN_STATUSES, invoice=invoice, status=status, **links
            )
        elif links:  # a settled payment keeps its status; ids Stripe told us are recorded
            payment = payment_transition_locked(
                payment=payment, allowed_from=tuple(Payment.Status.values), invoice=invoice, **links
            )
        # A failure is announced once, when the payment turns failed (`invoice.paid` is announced by
        # invoice_apply when the invoice turns paid: once per invoice, whichever event says so first).
        if not paid and payment.status != status_before:
            event_record(
                project=invoice.project,
                type="invoice.payment_failed",
                data_object=_invoice_object(Invoice.objects.select_related("customer").get(pk=invoice.pk)),
            )
    # What the payment grants follows its status changes (payment_transition's entitlements hook, which hands
    # the period's plan credits of a payment it turns paid: its status was read under the lock held since); a
    # payment that was settled before its invoice was mirrored gets them now (idempotent).
    if paid and payment.status == status_before:
        plan_credits_grant(payment=payment, invoice=invoice)
    subjects_note(payment=payment.pk, reference=payment.reference)  # the event's log line names it
    return payment


def _with_invoice_holders(payment: Payment, invoice: Invoice) -> None:
    """The payment (of the invoice's project) with the project and customer the invoice holds, as
    `payment_transition_locked` wants them: not read again (a customer other than the invoice's is read when
    used)."""
    if Invoice.project.is_cached(invoice):
        payment.project = invoice.project
    if Invoice.customer.is_cached(invoice) and payment.customer_id == invoice.customer_id:
        payment.customer = invoice.customer
