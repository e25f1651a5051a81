"""Factories for catalog rows (products and prices), coupons and credit notes, local only: no Stripe object behind
them. Each takes `project=`. Tests that need the Stripe side create the catalog through the API instead."""

import factory

from billing.models import Coupon, CreditNote, PromotionCode
from catalog.models import Price, Product, ProductDraft
from tests.billing.payment_factories import InvoiceFactory


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    key = factory.Sequence(lambda n: f"product-{n}")
    name = factory.LazyAttribute(lambda o: o.key.replace("-", " ").title())


class ProductDraftFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductDraft

    class Params:
        project = factory.SubFactory("tests.projects.factories.ProjectFactory")

    product = factory.SubFactory(ProductFactory, project=factory.SelfAttribute("..project"))
    features = factory.Dict({})
    based_on = 1


class PriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Price

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    product = factory.SubFactory(ProductFactory, project=factory.SelfAttribute("..project"))
    key = factory.Sequence(lambda n: f"price-{n}")
    currency = "usd"
    unit_amount = 1500
    type = Price.Type.ONE_TIME


class CouponFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Coupon

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    key = factory.Sequence(lambda n: f"coupon-{n}")
    percent_off = 10
    duration = Coupon.Duration.ONCE
    stripe_coupon_id = factory.Sequence(lambda n: f"cpn_stripe_{n}")


class PromotionCodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PromotionCode

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    coupon = factory.SubFactory(CouponFactory, project=factory.SelfAttribute("..project"))
    code = factory.Sequence(lambda n: f"CODE{n}")
    stripe_promotion_code_id = factory.Sequence(lambda n: f"promo_stripe_{n}")


class CreditNoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CreditNote

    project = factory.SubFactory("tests.projects.factories.ProjectFactory")
    invoice = factory.SubFactory(InvoiceFactory, project=factory.SelfAttribute("..project"))
    customer = factory.SelfAttribute("invoice.customer")
    stripe_credit_note_id = factory.Sequence(lambda n: f"cn_factory_{n}")
    status = CreditNote.Status.ISSUED
    currency = "usd"
    amount = 500
    total = 500
