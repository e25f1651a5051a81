"""Factories for customers, carts, checkout sessions and payments. Each takes `project=`."""

from datetime import timedelta

import factory
from django.utils import timezone

from billing.models import Cart, CartItem, CheckoutSession, Invoice, Payment, Subscription
from customers.models import Customer


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    external_id = factory.Sequence(lambda n: f"user-{n}")
    email = factory.LazyAttribute(lambda o: f"{o.external_id}@example.com")


class CartFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cart

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    customer = factory.SubFactory(CustomerFactory, project=factory.SelfAttribute("..project"))


class CartItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CartItem

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    cart = factory.SubFactory(CartFactory, project=factory.SelfAttribute("..project"))
    price = factory.SubFactory(
        "tests.billing.factories.PriceFactory", project=factory.SelfAttribute("..project")
    )
    quantity = 1


class PaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payment

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    customer = factory.SubFactory(CustomerFactory, project=factory.SelfAttribute("..project"))
    type = Payment.Type.ONE_TIME
    flow = Payment.Flow.CHECKOUT
    source = Payment.Source.CHECKOUT
    amount = 1500
    currency = "usd"
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))


class CheckoutSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CheckoutSession

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    payment = factory.SubFactory(PaymentFactory, project=factory.SelfAttribute("..project"))
    customer = factory.SelfAttribute("payment.customer")
    mode = CheckoutSession.Mode.PAYMENT
    success_url = "https://app.example.com/ok"
    cancel_url = "https://app.example.com/cancel"
    expires_at = factory.SelfAttribute("payment.expires_at")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    customer = factory.SubFactory(CustomerFactory, project=factory.SelfAttribute("..project"))
    price = factory.SubFactory(
        "tests.billing.factories.PriceFactory", project=factory.SelfAttribute("..project")
    )
    product = factory.SelfAttribute("price.product")
    status = Subscription.Status.ACTIVE
    stripe_subscription_id = factory.Sequence(lambda n: f"sub_factory_{n}")


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invoice

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    customer = factory.SubFactory(CustomerFactory, project=factory.SelfAttribute("..project"))
    stripe_invoice_id = factory.Sequence(lambda n: f"in_factory_{n}")
    status = "paid"
    currency = "usd"


def paid_credit_packs(api, tenant, sdk, card="pm_card_visa"):
    """Two `credits-1000` packs (30.00) bought by user-1 through `POST /payments` (intent flow) and paid at Stripe
    with `card` (a PaymentMethod token: Stripe's test cards decide what later refunds do); its API answer."""
    created = api.post(
        "/api/v1/payments",
        {"customer": "user-1", "flow": "intent", "price": "credits-1000", "quantity": 2},
        key=tenant.key,
    ).json()
    sdk.v1.payment_intents.confirm(created["stripe_payment_intent_id"], {"payment_method": card})
    assert api.get(f"/api/v1/payments/{created['id']}", key=tenant.key).json()["status"] == "succeeded"
    return created
