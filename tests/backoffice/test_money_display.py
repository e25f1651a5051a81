"""The back office shows money as people read it, by each currency's minor unit: "$49.00", "¥500", "12.500 KWD"."""

import re

from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.test import Client

from billing.models import Refund
from tests.billing.factories import PriceFactory
from tests.billing.payment_factories import (
    CustomerFactory,
    InvoiceFactory,
    PaymentFactory,
    SubscriptionFactory,
)


def _root() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    return client


def _shown(client, url):
    """The detail page's read-only values by label, and the names of its form inputs (none may be money)."""
    html = re.sub(r"\s+", " ", client.get(url).content.decode())
    values = dict(re.findall(r'<label>([^<]+):</label> <div class="readonly">([^<]*)</div>', html))
    inputs = set(re.findall(r'<(?:input|select|textarea)[^>]* name="([a-z_]+)"', html))
    return values, inputs - {"csrfmiddlewaretoken", "_save", "_continue", "_addanother"}


def test_payment_list_and_page_show_formatted_amounts(tenant_a):
    dollars = PaymentFactory(project=tenant_a.project, amount=4900, amount_refunded=1250, currency="usd")
    yen = PaymentFactory(project=tenant_a.project, amount=500, currency="jpy")
    client = _root()

    listing = client.get("/admin/billing/payment/").content.decode()
    assert '<td class="field-amount">$49.00</td><td class="field-amount_refunded">$12.50</td>' in listing
    assert '<td class="field-amount">¥500</td><td class="field-amount_refunded">¥0</td>' in listing
    assert ">4900<" not in listing

    values, inputs = _shown(client, f"/admin/billing/payment/{quote(dollars.pk)}/change/")
    assert (values["Amount"], values["Refunded"], values["Currency"]) == ("$49.00", "$12.50", "usd")
    assert inputs == set()  # read-only, as before
    values, inputs = _shown(client, f"/admin/billing/payment/{quote(yen.pk)}/change/")
    assert (values["Amount"], values["Refunded"], inputs) == ("¥500", "¥0", set())


def test_money_columns_sort_by_the_stored_amount(tenant_a):
    for amount in (900, 10000, 4900):
        PaymentFactory(project=tenant_a.project, amount=amount)
    listing = _root().get("/admin/billing/payment/?o=7").content.decode()  # the seventh column: amount
    assert listing.index("$9.00") < listing.index("$49.00") < listing.index("$100.00")


def test_price_invoice_and_refund_lists_show_formatted_amounts(tenant_a):
    PriceFactory(project=tenant_a.project, key="dinar-monthly", currency="kwd", unit_amount=12500)
    InvoiceFactory(project=tenant_a.project, currency="jpy", total=3000, amount_paid=3000)
    payment = PaymentFactory(project=tenant_a.project, amount=4900, amount_refunded=4900, status="refunded")
    Refund.objects.create(
        project=tenant_a.project, payment=payment, amount=4900, currency="usd", status="succeeded"
    )
    client = _root()

    prices = client.get("/admin/catalog/price/").content.decode()
    assert '<td class="field-unit_amount">12.500 KWD</td>' in prices
    invoices = client.get("/admin/billing/invoice/").content.decode()
    assert '<td class="field-total">¥3,000</td><td class="field-amount_paid">¥3,000</td>' in invoices
    refunds = client.get("/admin/billing/refund/").content.decode()
    assert '<td class="field-amount">$49.00</td>' in refunds


def test_price_invoice_and_refund_pages_show_formatted_amounts_read_only(tenant_a):
    price = PriceFactory(project=tenant_a.project, currency="kwd", unit_amount=12500)
    invoice = InvoiceFactory(
        project=tenant_a.project,
        currency="usd",
        subtotal=5000,
        tax=950,
        total=5950,
        amount_due=5950,
        amount_paid=2000,
        amount_remaining=3950,
    )
    payment = PaymentFactory(project=tenant_a.project, amount=500, amount_refunded=500, currency="jpy")
    refund = Refund.objects.create(
        project=tenant_a.project, payment=payment, amount=500, currency="jpy", status="succeeded"
    )
    client = _root()

    values, inputs = _shown(client, f"/admin/catalog/price/{quote(price.pk)}/change/")
    assert (values["Unit price"], inputs) == ("12.500 KWD", set())
    values, inputs = _shown(client, f"/admin/billing/invoice/{quote(invoice.pk)}/change/")
    money = ["Subtotal", "Discount", "Tax", "Total", "Due", "Paid", "Remaining"]
    assert [values[label] for label in money] == [
        "$50.00",
        "$0.00",
        "$9.50",
        "$59.50",
        "$59.50",
        "$20.00",
        "$39.50",
    ]
    assert inputs == set()
    values, inputs = _shown(client, f"/admin/billing/refund/{quote(refund.pk)}/change/")
    assert (values["Amount"], inputs) == ("¥500", set())


def test_customer_page_inlines_show_formatted_amounts(tenant_a):
    customer = CustomerFactory(project=tenant_a.project)
    PaymentFactory(project=tenant_a.project, customer=customer, amount=123456, currency="eur")
    InvoiceFactory(project=tenant_a.project, customer=customer, currency="kwd", total=1500, amount_paid=0)
    page = _root().get(f"/admin/customers/customer/{quote(customer.pk)}/change/").content.decode()
    assert "<p>€1,234.56</p>" in page
    assert "<p>1.500 KWD</p>" in page
    assert "<p>0.000 KWD</p>" in page


def test_payment_items_and_invoice_lines_show_money_not_minor_units(tenant_a):
    payment = PaymentFactory(
        project=tenant_a.project,
        amount=3200,
        currency="eur",
        items=[
            {
                "price": "prc_1",
                "price_key": "credits-1000",
                "product": "prd_1",
                "quantity": 2,
                "unit_amount": 1250,
            },
            {"price": "prc_2", "price_key": "sticker", "product": "prd_2", "quantity": 1, "unit_amount": 700},
        ],
    )
    invoice = InvoiceFactory(
        project=tenant_a.project,
        currency="jpy",
        total=1000,
        lines=[
            {"description": "Pro × 2", "amount": 1000, "currency": "jpy", "quantity": 2, "proration": False},
            {
                "description": "Unused time",
                "amount": -300,
                "currency": "jpy",
                "quantity": 1,
                "proration": True,
            },
        ],
    )
    client = _root()
    html = re.sub(
        r"\s+", " ", client.get(f"/admin/billing/payment/{quote(payment.pk)}/change/").content.decode()
    )
    assert (
        '<div class="readonly">2 × credits-1000 at €12.50 = €25.00<br>1 × sticker at €7.00 = €7.00</div>'
        in html
    )
    assert "1250" not in html
    assert _shown(client, f"/admin/billing/payment/{quote(payment.pk)}/change/")[1] == set()
    html = re.sub(
        r"\s+", " ", client.get(f"/admin/billing/invoice/{quote(invoice.pk)}/change/").content.decode()
    )
    assert '<div class="readonly">Pro × 2 (× 2): ¥1,000<br>Unused time: -¥300</div>' in html


def test_drift_on_a_money_field_shows_money_in_the_local_rows_currency(tenant_a):
    from billing.models import Drift, ReconciliationRun

    yen = PaymentFactory(project=tenant_a.project, amount=500, amount_refunded=0, currency="jpy")
    run = ReconciliationRun.objects.create(project=tenant_a.project)
    refunded = Drift.objects.create(
        run=run,
        project=tenant_a.project,
        kind=Drift.Kind.MISMATCH,
        object_type="payment",
        stripe_id="ch_1",
        local_id=yen.pk,
        field="amount_refunded",
        local_value="0",
        stripe_value="500",
    )
    status = Drift.objects.create(
        run=run,
        project=tenant_a.project,
        kind=Drift.Kind.MISMATCH,
        object_type="payment",
        stripe_id="ch_1",
        local_id=yen.pk,
        field="status",
        local_value="succeeded",
        stripe_value="refunded",
    )
    client = _root()
    listing = re.sub(r"\s+", " ", client.get("/admin/billing/drift/").content.decode())
    assert (
        '<td class="field-local_value_shown">¥0</td><td class="field-stripe_value_shown">¥500</td>' in listing
    )
    assert (
        '<td class="field-local_value_shown">succeeded</td><td class="field-stripe_value_shown">refunded</td>'
        in listing
    )
    values, inputs = _shown(client, f"/admin/billing/drift/{quote(refunded.pk)}/change/")
    assert (values["Here"], values["At Stripe"], inputs) == ("¥0", "¥500", set())
    values, _ = _shown(client, f"/admin/billing/drift/{quote(status.pk)}/change/")
    assert (values["Here"], values["At Stripe"]) == ("succeeded", "refunded")


def test_tax_and_discount_of_payments_and_invoices_show_money(tenant_a):
    payment = PaymentFactory(
        project=tenant_a.project, amount=2761, amount_tax=361, amount_discount=500, currency="usd"
    )
    invoice = InvoiceFactory(
        project=tenant_a.project,
        currency="eur",
        subtotal=1900,
        discount=475,
        tax=271,
        total=1696,
        amount_due=1696,
        amount_paid=1696,
        amount_remaining=0,
    )
    client = _root()
    values, inputs = _shown(client, f"/admin/billing/payment/{quote(payment.pk)}/change/")
    assert (values["Tax (included)"], values["Discount (taken off)"], inputs) == ("$3.61", "$5.00", set())
    values, _ = _shown(client, f"/admin/billing/invoice/{quote(invoice.pk)}/change/")
    assert (values["Subtotal"], values["Discount"], values["Tax"], values["Total"]) == (
        "€19.00",
        "€4.75",
        "€2.71",
        "€16.96",
    )
    for url in (
        f"/admin/billing/payment/{quote(payment.pk)}/change/",
        f"/admin/billing/invoice/{quote(invoice.pk)}/change/",
    ):
        html = client.get(url).content.decode()
        assert not re.search(r'<div class="readonly">(361|500|475|271)</div>', html)


def test_a_tiered_price_shows_its_tiers_as_money(tenant_a, catalog):
    tiered = PriceFactory(
        project=tenant_a.project,
        product=catalog.pro,
        key="seats-monthly",
        currency="usd",
        type="recurring",
        interval="month",
        unit_amount=None,
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=[
            {"up_to": 10, "unit_amount": 1200, "flat_amount": None},
            {"up_to": "inf", "unit_amount": 900, "flat_amount": 2000},
        ],
    )
    client = _root()
    prices = client.get("/admin/catalog/price/").content.decode()
    assert '<td class="field-unit_amount">tiered (graduated)</td>' in prices
    html = re.sub(
        r"\s+", " ", client.get(f"/admin/catalog/price/{quote(tiered.pk)}/change/").content.decode()
    )
    values, inputs = _shown(client, f"/admin/catalog/price/{quote(tiered.pk)}/change/")
    assert (values["Unit price"], inputs) == ("tiered (graduated)", set())
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td></tr>", html)
    assert rows == [("1–10", "$12.00 each"), ("11 and up", "$9.00 each + $20.00 flat")]
    assert "1200" not in html
    assert "flat_amount" not in html


def test_a_subscriptions_discount_reads_as_words_and_money(tenant_a, catalog):
    percent = SubscriptionFactory(
        project=tenant_a.project,
        price=catalog.pro_monthly,
        discount={
            "stripe_discount_id": "di_1",
            "coupon": "launch",
            "promotion_code": "LAUNCH25",
            "percent_off": 25.0,
            "amount_off": None,
            "currency": None,
            "duration": "repeating",
            "end": 1798076894,
        },
    )
    amount = SubscriptionFactory(
        project=tenant_a.project,
        price=catalog.pro_monthly,
        discount={
            "stripe_discount_id": "di_2",
            "coupon": "five-off",
            "promotion_code": None,
            "percent_off": None,
            "amount_off": 500,
            "currency": "usd",
            "duration": "once",
            "end": None,
        },
    )
    client = _root()
    values, inputs = _shown(client, f"/admin/billing/subscription/{quote(percent.pk)}/change/")
    discount = values["Discount"]
    assert discount == "25% off, repeating until 2026-12-24 01:48 UTC (coupon launch, code LAUNCH25)"
    assert inputs == set()
    values, _ = _shown(client, f"/admin/billing/subscription/{quote(amount.pk)}/change/")
    assert values["Discount"] == "$5.00 off, once (coupon five-off)"
    html = client.get(f"/admin/billing/subscription/{quote(percent.pk)}/change/").content.decode()
    assert "stripe_discount_id" not in html
