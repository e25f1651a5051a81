"""Routes of billing: checkout, carts, payments, the portal, subscriptions, invoices, credit notes, coupons,
promotion codes, margins and the journal."""

from billing.apis import (
    adoptions,
    carts,
    checkout,
    credit_notes,
    discounts,
    invoice_lines,
    invoices,
    journal,
    margins,
    payments,
    portal,
    rerating,
    subscriptions,
    version_moves,
)
from core.urls import route

urlpatterns = [
    *route("checkout/subscription", checkout.CheckoutSubscriptionApi.as_view(), "checkout-subscription"),
    *route("checkout/item", checkout.CheckoutItemApi.as_view(), "checkout-item"),
    *route("checkout/cart", checkout.CheckoutCartApi.as_view(), "checkout-cart"),
    *route("checkout/<str:session_id>", checkout.CheckoutDetailApi.as_view(), "checkout-detail"),
    *route("carts", carts.CartCreateApi.as_view(), "carts"),
    *route("carts/<str:cart_id>", carts.CartDetailApi.as_view(), "cart-detail"),
    *route("carts/<str:cart_id>/items", carts.CartItemCreateApi.as_view(), "cart-items"),
    *route("carts/<str:cart_id>/items/<str:item_id>", carts.CartItemDetailApi.as_view(), "cart-item-detail"),
    *route("payments", payments.PaymentListCreateApi.as_view(), "payments"),
    *route("payments/<str:payment_id>", payments.PaymentDetailApi.as_view(), "payment-detail"),
    *route("payments/<str:payment_id>/status", payments.PaymentStatusApi.as_view(), "payment-status"),
    *route("payments/<str:payment_id>/refund", payments.PaymentRefundApi.as_view(), "payment-refund"),
    *route("payments/<str:payment_id>/cancel", payments.PaymentCancelApi.as_view(), "payment-cancel"),
    *route("portal", portal.PortalApi.as_view(), "portal"),
    *route("portal/eligibility", portal.PortalEligibilityApi.as_view(), "portal-eligibility"),
    *route("subscriptions", subscriptions.SubscriptionListApi.as_view(), "subscriptions"),
    *route(
        "subscriptions/version_moves", version_moves.VersionMovesApi.as_view(), "subscription-version-moves"
    ),
    *route(
        "subscriptions/<str:subscription_id>",
        subscriptions.SubscriptionDetailApi.as_view(),
        "subscription-detail",
    ),
    *route(
        "subscriptions/<str:subscription_id>/cancel",
        subscriptions.SubscriptionCancelApi.as_view(),
        "subscription-cancel",
    ),
    *route(
        "subscriptions/<str:subscription_id>/preview",
        subscriptions.SubscriptionPreviewApi.as_view(),
        "subscription-preview",
    ),
    *route(
        "subscriptions/<str:subscription_id>/resume",
        subscriptions.SubscriptionResumeApi.as_view(),
        "subscription-resume",
    ),
    *route("invoices", invoices.InvoiceListApi.as_view(), "invoices"),
    *route("invoices/<str:invoice_id>", invoices.InvoiceDetailApi.as_view(), "invoice-detail"),
    *route("invoices/<str:invoice_id>/void", invoices.InvoiceVoidApi.as_view(), "invoice-void"),
    *route("invoices/<str:invoice_id>/lines", invoice_lines.InvoiceLineCreateApi.as_view(), "invoice-lines"),
    *route(
        "invoices/<str:invoice_id>/lines/<str:line_id>",
        invoice_lines.InvoiceLineDetailApi.as_view(),
        "invoice-line-detail",
    ),
    *route(
        "invoices/<str:invoice_id>/mark_uncollectible",
        invoices.InvoiceMarkUncollectibleApi.as_view(),
        "invoice-mark-uncollectible",
    ),
    *route(
        "invoices/<str:invoice_id>/credit_notes",
        credit_notes.CreditNoteCreateApi.as_view(),
        "invoice-credit-notes",
    ),
    *route("credit_notes", credit_notes.CreditNoteListApi.as_view(), "credit-notes"),
    *route(
        "credit_notes/<str:credit_note_id>", credit_notes.CreditNoteDetailApi.as_view(), "credit-note-detail"
    ),
    *route(
        "credit_notes/<str:credit_note_id>/void", credit_notes.CreditNoteVoidApi.as_view(), "credit-note-void"
    ),
    *route("margins", margins.MarginListApi.as_view(), "margins"),
    *route(
        "products/<str:product>/draft/rerating", rerating.DraftReratingApi.as_view(), "product-draft-rerating"
    ),
    *route("journal/entries", journal.JournalEntryListApi.as_view(), "journal-entries"),
    *route("coupons", discounts.CouponListCreateApi.as_view(), "coupons"),
    *route("coupons/<str:coupon>", discounts.CouponDetailApi.as_view(), "coupon-detail"),
    *route("promotion_codes", discounts.PromotionCodeListCreateApi.as_view(), "promotion-codes"),
    *route(
        "promotion_codes/<str:promotion_code>",
        discounts.PromotionCodeDetailApi.as_view(),
        "promotion-code-detail",
    ),
    *route("projects/<str:project_id>/adoptions", adoptions.AdoptionCreateApi.as_view(), "project-adoptions"),
    *route(
        "projects/<str:project_id>/adoptions/<str:run_id>",
        adoptions.AdoptionDetailApi.as_view(),
        "project-adoption-detail",
    ),
]
