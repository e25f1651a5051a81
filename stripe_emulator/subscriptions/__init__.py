"""Subscriptions, subscription items, invoices, invoice line items, invoice payments and credit notes
(``/v1/subscriptions``, ``/v1/subscription_items``, ``/v1/invoices``, ``/v1/invoice_payments``,
``/v1/credit_notes``), the hosted invoice page and PDF, and the billing advance hook (renewals, trials,
dunning, expiry)."""

from stripe_emulator.core.account import Account
from stripe_emulator.core.render import render
from stripe_emulator.core.service import Service, Shape
from stripe_emulator.core.store import StripeObject
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.payments.models import PaymentsBackend
from stripe_emulator.products.models import ProductsBackend
from stripe_emulator.subscriptions.invoices import InvoicesBackend, on_payment_intent_status
from stripe_emulator.subscriptions.invoices.credit_notes import CreditNotesBackend, CreditNoteSpec, LineSpec
from stripe_emulator.subscriptions.invoices.responses import include_confirmation_secret, include_payments
from stripe_emulator.subscriptions.models import SubscriptionsBackend, run_billing
from stripe_emulator.subscriptions.responses import include_customer_subscriptions
from stripe_emulator.subscriptions.schedules import SchedulesBackend
from stripe_emulator.subscriptions.urls import ROUTES

if on_payment_intent_status not in PaymentsBackend.status_listeners:
    PaymentsBackend.status_listeners.append(on_payment_intent_status)


def _paid_subscription(account: Account) -> StripeObject:
    customer = account.backend(CustomersBackend).customer_create(email="shape@example.com")
    price = account.backend(ProductsBackend).price_create(
        currency="usd", product_data={"name": "Shape"}, unit_amount=1000, recurring={"interval": "month"}
    )
    return account.backend(SubscriptionsBackend).subscription_create_internal(
        customer=customer["id"],
        items=[{"price": price["id"], "quantity": 1}],
        default_payment_method="pm_card_visa",
    )


def _subscription(account: Account) -> StripeObject:
    return render(account, _paid_subscription(account))


def _item(account: Account) -> StripeObject:
    sub = _paid_subscription(account)
    return render(account, account.backend(SubscriptionsBackend).items_of(sub)[0])


def _invoice(account: Account) -> StripeObject:
    sub = _paid_subscription(account)
    return render(account, account.backend(InvoicesBackend).invoice_require(sub["latest_invoice"]))


def _line(account: Account) -> StripeObject:
    sub = _paid_subscription(account)
    return render(account, account.backend(InvoicesBackend).invoice_lines(sub["latest_invoice"])[0])


def _invoice_payment(account: Account) -> StripeObject:
    sub = _paid_subscription(account)
    return render(account, account.backend(InvoicesBackend).invoice_payments_of(sub["latest_invoice"])[0])


def _schedule(account: Account) -> StripeObject:
    sub = _paid_subscription(account)
    return render(account, account.backend(SchedulesBackend).schedule_from_subscription(sub["id"]))


def _invoiceitem(account: Account) -> StripeObject:
    sub = _paid_subscription(account)
    backend = account.backend(SubscriptionsBackend)
    price = account.backend(ProductsBackend).price_create(
        currency="usd", product_id=sub["items"]["data"][0]["price"]["product"], unit_amount=2000,
        recurring={"interval": "month"},
    )  # fmt: skip
    item = sub["items"]["data"][0]
    account.emulator.clock.advance(86_400)
    backend.subscription_update(sub["id"], items=[{"id": item["id"], "price": price["id"]}])
    return render(account, account.backend(InvoicesBackend).pending_items(sub["id"])[0])


def _credit_note(account: Account) -> StripeObject:
    sub = _paid_subscription(account)
    invoice = account.backend(InvoicesBackend).invoice_require(sub["latest_invoice"])
    first = invoice["lines"]["data"][0]["id"]
    line = LineSpec(param="lines[0]", type="invoice_line_item", invoice_line_item=first, quantity=1)
    spec = CreditNoteSpec(invoice=invoice["id"], lines=[line], credit_amount=invoice["total"])
    return render(account, account.backend(CreditNotesBackend).credit_note_create(spec))


def _credit_note_line(account: Account) -> StripeObject:
    return _credit_note(account)["lines"]["data"][0]


SERVICE = Service(
    name="subscriptions",
    routes=ROUTES,
    shapes=[
        Shape("subscription", "subscription", _subscription),
        Shape("subscription_item", "subscription_item", _item),
        Shape("invoice", "invoice", _invoice),
        Shape("invoice_line_item", "line_item", _line),
        Shape("invoice_payment", "invoice_payment", _invoice_payment),
        Shape("invoiceitem", "invoiceitem", _invoiceitem),
        Shape("subscription_schedule", "subscription_schedule", _schedule),
        Shape("credit_note", "credit_note", _credit_note),
        Shape("credit_note_line_item", "credit_note_line_item", _credit_note_line),
    ],
    advance_hooks=[run_billing],
    includes={
        ("invoice", "payments"): include_payments,
        ("invoice", "confirmation_secret"): include_confirmation_secret,
        ("customer", "subscriptions"): include_customer_subscriptions,
    },
)

__all__ = ["SERVICE", "CreditNotesBackend", "InvoicesBackend", "SubscriptionsBackend"]
