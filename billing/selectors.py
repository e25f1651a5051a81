"""Reads of billing records for the API, admin, commands and other apps. Every selector takes the project."""

from django.db.models import Q, QuerySet

from billing.models import Cart, CheckoutSession, Customer, Payment, Price, Product, Subscription
from core.errors import NotFound
from projects.models import Project


def customer_list(*, project: Project) -> QuerySet[Customer]:
    return Customer.objects.filter(project=project)


def customer_find(*, project: Project, external_id: str) -> Customer | None:
    return Customer.objects.filter(project=project, external_id=external_id).first()


def customer_get(*, project: Project, external_id: str, param: str | None = None) -> Customer:
    customer = customer_find(project=project, external_id=external_id)
    if customer is None:
        raise NotFound(f"No such customer: {external_id!r}.", param=param)
    return customer


def product_list(*, project: Project) -> QuerySet[Product]:
    return Product.objects.filter(project=project)


def product_get(*, project: Project, key_or_id: str, param: str | None = None) -> Product:
    product = Product.objects.filter(Q(key=key_or_id) | Q(pk=key_or_id), project=project).first()
    if product is None:
        raise NotFound(f"No such product: {key_or_id!r}.", param=param)
    return product


def price_list(*, project: Project) -> QuerySet[Price]:
    return Price.objects.filter(project=project).select_related("product", "meter")


def price_get(*, project: Project, key_or_id: str, param: str | None = None) -> Price:
    price = price_list(project=project).filter(Q(key=key_or_id) | Q(pk=key_or_id)).first()
    if price is None:
        raise NotFound(f"No such price: {key_or_id!r}.", param=param)
    return price


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


def payment_list(*, project: Project) -> QuerySet[Payment]:
    return Payment.objects.filter(project=project).select_related("customer")


def payment_get(*, project: Project, payment_id: str) -> Payment:
    payment = payment_list(project=project).filter(pk=payment_id).first()
    if payment is None:
        raise NotFound(f"No such payment: {payment_id!r}.")
    return payment


def payment_by_reference(*, project: Project, reference: str) -> Payment | None:
    return payment_list(project=project).filter(reference=reference).first()


def live_subscription_to(*, customer: Customer, product: Product) -> Subscription | None:
    return Subscription.objects.filter(
        project_id=customer.project_id,
        customer=customer,
        product=product,
        status__in=Subscription.LIVE_STATUSES,
    ).first()
