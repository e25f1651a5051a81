"""Subscription, subscription item, invoice, invoice payment and credit note routes, the hosted invoice page
and PDF, the credit note PDF, and the billing settings test control."""

from __future__ import annotations

from stripe_emulator.core.routing import Route
from stripe_emulator.subscriptions import pages, responses
from stripe_emulator.subscriptions import schedule_responses as schedules
from stripe_emulator.subscriptions.invoices import credit_note_responses as credit_notes
from stripe_emulator.subscriptions.invoices import item_responses
from stripe_emulator.subscriptions.invoices import responses as invoice_responses

_API = [
    ("POST", "/v1/subscriptions", responses.subscription_create),
    ("GET", "/v1/subscriptions", responses.subscription_list),
    ("GET", "/v1/subscriptions/{id}", responses.subscription_retrieve),
    ("POST", "/v1/subscriptions/{id}", responses.subscription_update),
    ("DELETE", "/v1/subscriptions/{id}", responses.subscription_cancel),
    ("POST", "/v1/subscriptions/{id}/resume", responses.subscription_resume),
    ("POST", "/v1/subscription_schedules", schedules.schedule_create),
    ("GET", "/v1/subscription_schedules", schedules.schedule_list),
    ("GET", "/v1/subscription_schedules/{id}", schedules.schedule_retrieve),
    ("POST", "/v1/subscription_schedules/{id}", schedules.schedule_update),
    ("POST", "/v1/subscription_schedules/{id}/release", schedules.schedule_release),
    ("POST", "/v1/subscription_schedules/{id}/cancel", schedules.schedule_cancel),
    ("POST", "/v1/subscription_items", responses.subscription_item_create),
    ("GET", "/v1/subscription_items", responses.subscription_item_list),
    ("GET", "/v1/subscription_items/{id}", responses.subscription_item_retrieve),
    ("POST", "/v1/subscription_items/{id}", responses.subscription_item_update),
    ("DELETE", "/v1/subscription_items/{id}", responses.subscription_item_delete),
    ("POST", "/v1/invoices", invoice_responses.invoice_create),
    # Before ``/v1/invoices/{id}``, which would otherwise take ``create_preview`` for an id.
    ("POST", "/v1/invoices/create_preview", responses.invoice_create_preview),
    ("GET", "/v1/invoices", invoice_responses.invoice_list),
    ("GET", "/v1/invoices/{id}", invoice_responses.invoice_retrieve),
    ("POST", "/v1/invoices/{id}", invoice_responses.invoice_update),
    ("DELETE", "/v1/invoices/{id}", invoice_responses.invoice_delete),
    ("POST", "/v1/invoices/{id}/finalize", invoice_responses.invoice_finalize),
    ("POST", "/v1/invoices/{id}/pay", invoice_responses.invoice_pay),
    ("POST", "/v1/invoices/{id}/void", invoice_responses.invoice_void),
    ("POST", "/v1/invoices/{id}/mark_uncollectible", invoice_responses.invoice_mark_uncollectible),
    ("GET", "/v1/invoices/{id}/lines", invoice_responses.invoice_lines),
    ("POST", "/v1/invoiceitems", item_responses.invoiceitem_create),
    ("GET", "/v1/invoiceitems", item_responses.invoiceitem_list),
    ("GET", "/v1/invoiceitems/{id}", item_responses.invoiceitem_retrieve),
    ("POST", "/v1/invoiceitems/{id}", item_responses.invoiceitem_update),
    ("DELETE", "/v1/invoiceitems/{id}", item_responses.invoiceitem_delete),
    ("GET", "/v1/invoice_payments", invoice_responses.invoice_payment_list),
    ("GET", "/v1/invoice_payments/{id}", invoice_responses.invoice_payment_retrieve),
    ("POST", "/v1/credit_notes", credit_notes.credit_note_create),
    ("GET", "/v1/credit_notes", credit_notes.credit_note_list),
    # Before ``/v1/credit_notes/{id}…``, which would otherwise take ``preview`` for an id.
    ("GET", "/v1/credit_notes/preview", credit_notes.credit_note_preview),
    ("GET", "/v1/credit_notes/preview/lines", credit_notes.credit_note_preview_lines),
    ("GET", "/v1/credit_notes/{id}", credit_notes.credit_note_retrieve),
    ("POST", "/v1/credit_notes/{id}", credit_notes.credit_note_update),
    ("POST", "/v1/credit_notes/{id}/void", credit_notes.credit_note_void),
    ("GET", "/v1/credit_notes/{id}/lines", credit_notes.credit_note_lines),
    ("POST", "/_emulator/billing/settings", responses.billing_settings_update),
]

ROUTES = [Route(method, path, handler) for method, path, handler in _API] + [
    Route("GET", "/invoices/{id}", pages.invoice_page, auth=False),
    Route("GET", "/invoices/{id}/pdf", pages.invoice_pdf, auth=False),
    Route("GET", "/invoices/{invoice}/credit_notes/{id}/pdf", credit_notes.credit_note_pdf, auth=False),
]
