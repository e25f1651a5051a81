"""Billing records, one module per family: carts, payments and refunds (`payments`), subscriptions and invoices
(`subscriptions`), the credit notes of invoices (`credit_notes`), reconciliation, discounts, the revenue figures
kept as events arrive (`revenue`), and the margin alerts announced (`margins`), usage billed after its period was invoiced (`late_usage`), Stripe's balance transactions (`balance`) and the double-entry journal (`journal`).

Django registers an app's models by importing `billing.models`, so this package imports each of them; code
imports them from here (`from billing.models import Payment`), with the groups of states that the services and
their compiled reads (`billing.statements`) share."""

from billing.models.adoption import AdoptionRun
from billing.models.balance import BalanceTransaction
from billing.models.credit_notes import CreditNote
from billing.models.discounts import Coupon, PromotionCode
from billing.models.journal import ACCOUNT_CODES, Account, EntryKind, JournalEntry, JournalLine
from billing.models.late_usage import LateUsageCharge
from billing.models.margins import MarginAlert
from billing.models.payments import (
    DISPUTE_HELD_BACK,
    DISPUTE_LOST,
    PLAN_PAID,
    Cart,
    CartItem,
    CheckoutSession,
    Payment,
    Refund,
)
from billing.models.recognition import SCHEDULE_TIMING, RecognitionCursor, RevenueSchedule, recognised_by
from billing.models.reconciliation import Drift, ReconciliationRun
from billing.models.revenue import Figure, RevenueChange, RevenueTotal
from billing.models.subscriptions import (
    INVOICE_FINALIZED,
    PLAN_CREDIT_REASONS,
    Invoice,
    Subscription,
    SubscriptionItem,
)

__all__ = [
    "ACCOUNT_CODES",
    "DISPUTE_HELD_BACK",
    "DISPUTE_LOST",
    "INVOICE_FINALIZED",
    "PLAN_CREDIT_REASONS",
    "PLAN_PAID",
    "SCHEDULE_TIMING",
    "Account",
    "AdoptionRun",
    "BalanceTransaction",
    "Cart",
    "CartItem",
    "CheckoutSession",
    "Coupon",
    "CreditNote",
    "Drift",
    "EntryKind",
    "Figure",
    "Invoice",
    "JournalEntry",
    "JournalLine",
    "LateUsageCharge",
    "MarginAlert",
    "Payment",
    "PromotionCode",
    "RecognitionCursor",
    "ReconciliationRun",
    "Refund",
    "RevenueChange",
    "RevenueSchedule",
    "RevenueTotal",
    "Subscription",
    "SubscriptionItem",
    "recognised_by",
]
