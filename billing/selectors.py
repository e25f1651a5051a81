"""Reads of billing records for the API, admin, commands and other apps. Every selector takes the project."""

from collections import defaultdict
from datetime import date, datetime, timedelta

from django.db.models import DateField, F, Prefetch, Q, QuerySet, Sum, Value
from django.db.models.functions import TruncMonth
from django.utils import timezone

from billing.models import (
    AdoptionRun,
    Cart,
    CheckoutSession,
    Coupon,
    CreditNote,
    Invoice,
    JournalEntry,
    Payment,
    PromotionCode,
    RevenueChange,
    RevenueTotal,
    Subscription,
    SubscriptionItem,
)
from catalog.models import Product
from catalog.selectors import product_get
from core.errors import NotFound
from customers.models import Customer
from projects.models import Project


def cart_get(*, project: Project, cart_id: str, param: str | None = None) -> Cart:
    cart = (
        Cart.objects.filter(project=project, pk=cart_id)
        .exclude(status=Cart.Status.DELETED)
        .select_related("customer")
        .first()
    )
    if cart is None:
        raise NotFound(f"No such cart: {cart_id!r}.", param=param)
    return cart


def checkout_session_get(*, project: Project, session_id: str) -> CheckoutSession:
    session = (
        CheckoutSession.objects.filter(project=project, pk=session_id)
        .select_related("payment", "customer")
        .first()
    )
    if session is None:
        raise NotFound(f"No such checkout session: {session_id!r}.")
    return session


def checkout_session_for_payment(*, project: Project, payment: Payment) -> CheckoutSession:
    return (
        CheckoutSession.objects.select_related("payment", "customer")
        .filter(project=project)
        .get(payment=payment)
    )


def payment_list(*, project: Project) -> QuerySet[Payment]:
    return Payment.objects.filter(project=project).select_related("customer", "promotion_code")


def payment_search(
    *, project: Project, customer: str | None = None, status: str | None = None, reference: str | None = None
) -> QuerySet[Payment]:
    """The payments the API lists, by the customer's external id, status and reference (all optional)."""
    payments = payment_list(project=project).select_related("project", "checkout_session")
    if customer:
        payments = payments.filter(customer__external_id=customer)
    if status:
        payments = payments.filter(status=status)
    if reference:
        payments = payments.filter(reference=reference)
    return payments


def payment_get(*, project: Project, payment_id: str) -> Payment:
    payment = payment_list(project=project).filter(pk=payment_id).first()
    if payment is None:
        raise NotFound(f"No such payment: {payment_id!r}.")
    return payment


def payment_by_reference(*, project: Project, reference: str) -> Payment | None:
    return payment_list(project=project).filter(reference=reference).first()


def live_subscription_to(
    *, customer: Customer, product: Product, exclude: Subscription | None = None
) -> Subscription | None:
    """The customer's live subscription that has `product` (as its primary product or on any item), other
    than `exclude`."""
    subscriptions = Subscription.objects.filter(
        project_id=customer.project_id, customer=customer, status__in=Subscription.LIVE_STATUSES
    )
    if exclude is not None:
        subscriptions = subscriptions.exclude(pk=exclude.pk)
    return subscriptions.filter(
        Q(product=product) | Q(pk__in=SubscriptionItem.objects.filter(product=product).values("subscription"))
    ).first()


def subscription_list(
    *, project: Project, customer: str | None = None, status: str | None = None, product: str | None = None
) -> QuerySet[Subscription]:
    """Subscriptions by the customer's external id, status and product (key or id; unknown: 404 on `product`)."""
    subscriptions = (
        Subscription.objects.filter(project=project)
        .select_related("customer", "price", "product", "project")
        .prefetch_related(
            Prefetch("items", queryset=SubscriptionItem.objects.select_related("price", "product"))
        )
    )
    if customer:
        subscriptions = subscriptions.filter(customer__external_id=customer)
    if status:
        subscriptions = subscriptions.filter(status=status)
    if product:
        wanted = product_get(project=project, key_or_id=product, param="product")
        subscriptions = subscriptions.filter(
            Q(product=wanted)
            | Q(pk__in=SubscriptionItem.objects.filter(product=wanted).values("subscription"))
        )
    return subscriptions


def subscription_get(*, project: Project, subscription_id: str) -> Subscription:
    subscription = subscription_list(project=project).filter(pk=subscription_id).first()
    if subscription is None:
        raise NotFound(f"No such subscription: {subscription_id!r}.")
    return subscription


def invoice_list(
    *, project: Project, customer: str | None = None, status: str | None = None
) -> QuerySet[Invoice]:
    invoices = Invoice.objects.filter(project=project).select_related("customer")
    if customer:
        invoices = invoices.filter(customer__external_id=customer)
    if status:
        invoices = invoices.filter(status=status)
    return invoices


def invoice_get(*, project: Project, invoice_id: str) -> Invoice:
    invoice = invoice_list(project=project).filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound(f"No such invoice: {invoice_id!r}.")
    return invoice


def credit_note_list(
    *, project: Project, invoice: str | None = None, customer: str | None = None
) -> QuerySet[CreditNote]:
    notes = CreditNote.objects.filter(project=project).select_related("customer")
    if invoice:
        notes = notes.filter(invoice_id=invoice)
    if customer:
        notes = notes.filter(customer__external_id=customer)
    return notes


def credit_note_get(*, project: Project, credit_note_id: str) -> CreditNote:
    note = credit_note_list(project=project).select_related("project").filter(pk=credit_note_id).first()
    if note is None:
        raise NotFound(f"No such credit note: {credit_note_id!r}.")
    return note


def checkout_session_by_stripe_id(*, project: Project, stripe_session_id: str) -> CheckoutSession | None:
    """Our checkout session for Stripe's `cs_…` id (what Stripe puts in a success URL's `{CHECKOUT_SESSION_ID}`)."""
    return (
        CheckoutSession.objects.filter(project=project, stripe_session_id=stripe_session_id)
        .select_related("payment", "customer")
        .first()
    )


def coupon_list(*, project: Project) -> QuerySet[Coupon]:
    return Coupon.objects.filter(project=project, deleted_at__isnull=True).order_by("-created_at", "-id")


def coupon_get(*, project: Project, key_or_id: str, param: str | None = None) -> Coupon:
    coupon = coupon_list(project=project).filter(Q(key=key_or_id) | Q(pk=key_or_id)).first()
    if coupon is None:
        raise NotFound(f"No such coupon: {key_or_id!r}.", param=param)
    return coupon


def coupon_product_keys(*, coupon: Coupon) -> list[str]:
    """The keys of the products a coupon is limited to (`applies_to` holds their ids), in its order."""
    keys = dict(
        Product.objects.filter(project_id=coupon.project_id, pk__in=coupon.applies_to).values_list(
            "pk", "key"
        )
    )
    return [keys.get(pk, pk) for pk in coupon.applies_to]


def promotion_code_list(
    *, project: Project, coupon: Coupon | None = None, active: bool | None = None
) -> QuerySet[PromotionCode]:
    codes = PromotionCode.objects.filter(project=project)
    if coupon is not None:
        codes = codes.filter(coupon=coupon)
    if active is not None:
        codes = codes.filter(active=active)
    return codes.select_related("coupon").order_by("-created_at", "-id")


def promotion_code_get(*, project: Project, promotion_code_id: str) -> PromotionCode:
    promo = promotion_code_list(project=project).filter(pk=promotion_code_id).first()
    if promo is None:
        raise NotFound(f"No such promotion code: {promotion_code_id!r}.")
    return promo


def promotion_code_by_code(*, project: Project, code: str) -> PromotionCode | None:
    """The project's promotion code spelled `code`, in any case (codes compare case-insensitively)."""
    return promotion_code_list(project=project).filter(code__iexact=code).first()


def revenue_figures(
    *,
    project: Project | None,
    figures: tuple[str, ...],
    since: date | None = None,
    until: date | None = None,
    by: str | None = None,
) -> dict[tuple[str, str, date | None], int]:
    """A project's figures (every project's with None; billing.models.revenue) per (figure, currency, period)
    over the UTC days in [since, until): the folded totals plus what the journal still holds, summed by the
    database per `by` ("day", "month": the first day of the month, None: the whole range, period None).
    Periods without any change are absent."""
    scope = Q(figure__in=figures) & (Q(project=project) if project is not None else Q())
    if since is not None:
        scope &= Q(day__gte=since)
    if until is not None:
        scope &= Q(day__lt=until)
    period = {"day": F("day"), "month": TruncMonth("day"), None: Value(None, output_field=DateField())}[by]
    sums: dict[tuple[str, str, date | None], int] = defaultdict(int)
    for model in (RevenueTotal, RevenueChange):
        for row in (
            model.objects.filter(scope)
            .annotate(period=period)
            .values("figure", "currency", "period")
            .annotate(total=Sum("amount"))
            .order_by()
        ):
            sums[(row["figure"], row["currency"], row["period"])] += int(row["total"])
    return sums


def adoption_run_get(*, project: Project, run_id: str) -> AdoptionRun:
    run = AdoptionRun.objects.filter(project=project, pk=run_id).first()
    if run is None:
        raise NotFound(f"No such adoption run: {run_id!r}.", param="run_id")
    return run


# How long after it is posted the journal's stream serves an entry. An entry's `created_at` is taken when it is
# inserted, inside its writer's transaction, so an entry may commit after one posted later was read: a reader past
# it would never see it. The writers post under their rows' locks in short transactions that call nothing outside
# the database (a webhook's event, a reconciliation's row, a page of Stripe's balance transactions already read);
# a minute is far longer than any of them, plus the skew between the clocks of two web or worker hosts. A writer
# that holds a transaction open longer (a Stripe call inside it) would break the stream's promise.
JOURNAL_SETTLE = timedelta(seconds=60)


def journal_entry_stream(
    *,
    project: Project,
    kind: str | None = None,
    effective_from: datetime | None = None,
    effective_to: datetime | None = None,
) -> QuerySet[JournalEntry]:
    """The project's journal entries posted at least `JOURNAL_SETTLE` ago (all committed by now), with their
    lines; optionally of one `kind`, effective in [effective_from, effective_to). Unordered: the stream orders."""
    entries = JournalEntry.objects.filter(project=project, created_at__lte=timezone.now() - JOURNAL_SETTLE)
    if kind:
        entries = entries.filter(kind=kind)
    if effective_from is not None:
        entries = entries.filter(effective_at__gte=effective_from)
    if effective_to is not None:
        entries = entries.filter(effective_at__lt=effective_to)
    return entries.prefetch_related("lines")
