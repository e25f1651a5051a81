"""A person's data, exported (issue #29, "privacy requests"): every row keyed to one customer, in one JSON
document grouped by kind, in the API's representations where the API has one (the row's own fields
otherwise; encrypted secrets never). Streamed: the rows are read `EXPORT_BATCH` at a time and written as they
come, so a long history costs the same memory as a short one.

The kinds are found from the models, not listed by hand: every model with a foreign key to the customer is one
(`Customer._meta.related_objects`), plus the rows hanging one step further (refunds, cart and subscription
items), the tenant events that quote the customer, the Stripe events about their Stripe customer and the audit
rows about them."""

import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import ForeignObjectRel, QuerySet
from django.utils import timezone

from billing.models import CartItem, CheckoutSession, Invoice, Payment, Refund, Subscription, SubscriptionItem
from billing.representations import CheckoutSessionOutput, InvoiceOutput, PaymentOutput, SubscriptionOutput
from core.actors import Actor
from core.audit import audit_record
from core.crypto import EncryptedTextField
from core.models import AuditLogEntry
from core.privacy import Erasure, matching
from customers import selectors as customer_selectors
from customers.models import Customer
from customers.representations import CustomerOutput
from events.models import Event
from events.representations import EventOutput
from projects.models import Project
from stripe_gateway.gateway import stripe_account_of
from webhooks.models import StripeEvent
from webhooks.services.event_erasure import stripe_events_of_customer

EXPORT_BATCH = 500
# The document's kinds beyond the models' foreign keys to the customer (`customer_export_kinds`), described.
EXTRA_KINDS = {
    "refunds": "the refunds of the customer's payments",
    "cart_items": "the items of the customer's carts",
    "subscription_items": "the items of the customer's subscriptions",
    "events": "the tenant events whose object names the customer",
    "stripe_events": "Stripe's events about the customer's Stripe customer, as Stripe sent them",
    "audit_log": "the audit rows about the customer",
}
Render = Callable[[Any], dict[str, Any]]


def row_fields(row: models.Model) -> dict[str, Any]:
    """A row without an API representation: its own columns (a foreign key as the id it holds), secrets aside."""
    return {
        field.attname: field.value_from_object(row)
        for field in row._meta.concrete_fields
        if not isinstance(field, EncryptedTextField)
    }


def _represented(serializer: Any) -> Render:
    def render(row: Any) -> dict[str, Any]:
        data: dict[str, Any] = serializer(row).data
        return data

    return render


# The API's representations, and what they read besides the row.
_REPRESENTATIONS: dict[type[models.Model], tuple[Render, tuple[str, ...]]] = {
    Payment: (_represented(PaymentOutput), ("customer", "promotion_code", "checkout_session")),
    CheckoutSession: (_represented(CheckoutSessionOutput), ("customer", "payment")),
    Subscription: (_represented(SubscriptionOutput), ("customer", "price", "product")),
    Invoice: (_represented(InvoiceOutput), ("customer",)),
}


def customer_export_kinds(*, customer: Customer) -> list[tuple[str, QuerySet[Any], Render]]:
    """Every kind of row keyed to the customer: (name, rows, how one is written)."""
    kinds: list[tuple[str, QuerySet[Any], Render]] = []
    for relation in customer_relations():
        model = relation.related_model
        rows = model._default_manager.filter(**{relation.field.name: customer})
        render, related = _REPRESENTATIONS.get(model, (row_fields, ()))
        if related:
            rows = rows.select_related(*related)
        kinds.append((_kind_name(model), rows, render))
    kinds += [
        ("refunds", Refund.objects.filter(payment__customer=customer), row_fields),
        ("cart_items", CartItem.objects.filter(cart__customer=customer), row_fields),
        ("subscription_items", SubscriptionItem.objects.filter(subscription__customer=customer), row_fields),
    ]
    quoting = [json.dumps(customer.external_id), customer.pk]
    events = Event.objects.filter(project_id=customer.project_id).filter(matching(("data",), quoting))
    kinds.append(("events", events, _represented(EventOutput)))
    stripe_events = stripe_events_of_customer(
        account=stripe_account_of(customer.project),
        stripe_customer_id=customer.stripe_customer_id,
        erasure=Erasure(),
    ).order_by()
    kinds.append(("stripe_events", stripe_events, _stripe_event))
    audit = AuditLogEntry.objects.filter(project_id=customer.project_id, target_id=customer.pk)
    kinds.append(("audit_log", audit, row_fields))
    return kinds


def customer_relations() -> list[ForeignObjectRel]:
    """Every foreign key to the customer, hidden ones (`related_name="+"`) too."""
    relations = [
        field
        for field in Customer._meta.get_fields(include_hidden=True)
        if isinstance(field, ForeignObjectRel) and field.one_to_many and isinstance(field.related_model, type)
    ]
    return sorted(relations, key=lambda r: (_kind_name(r.related_model), r.field.name))


def export_kinds() -> dict[str, str]:
    """Every kind of the document, in its order, with what it holds."""
    kinds = {
        _kind_name(r.related_model): f"the customer's {r.related_model._meta.verbose_name_plural}"
        for r in customer_relations()
    }
    return {**kinds, **EXTRA_KINDS}


def _kind_name(model: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(model._meta.verbose_name_plural).lower()).strip("_")


def _stripe_event(event: StripeEvent) -> dict[str, Any]:
    return {
        "id": event.stripe_event_id,
        "type": event.type,
        "created": event.stripe_created,
        "received_at": event.received_at,
        "status": event.status,
        "data": event.payload.get("data"),
    }


def customer_export(*, project: Project, external_id: str, actor: Actor) -> Iterator[bytes]:
    """The customer's document (by the tenant's user id, or our id), as bytes to stream. The export is audited
    (who read whose data) before the first byte; 404 for a customer the project does not have (or has erased)."""
    customer = customer_selectors.customer_lookup(project=project, customer_id=external_id)
    with transaction.atomic(durable=True):
        audit_record(actor=actor, action="customer.exported", target=customer, project=project)
    return _document(customer)


def _document(customer: Customer) -> Iterator[bytes]:
    encoder = DjangoJSONEncoder()
    head = {
        "object": "customer_export",
        "exported_at": timezone.now(),
        "customer": CustomerOutput(customer).data,
    }
    yield encoder.encode(head)[:-1].encode()  # the object stays open for the kinds
    for name, rows, render in customer_export_kinds(customer=customer):
        yield f", {json.dumps(name)}: [".encode()
        yield from _rows(rows, render, encoder)
        yield b"]"
    yield b"}"


def _rows(rows: QuerySet[Any], render: Render, encoder: DjangoJSONEncoder) -> Iterable[bytes]:
    first = True
    for row in rows.order_by("pk").iterator(chunk_size=EXPORT_BATCH):
        yield (b"" if first else b", ") + encoder.encode(render(row)).encode()
        first = False
