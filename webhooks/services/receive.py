"""Stripe's deliveries in: verify the signature, store the event once (unique per Stripe account and event id,
race-safe), queue its processing on commit, off the request's path — nothing else."""

import json
import logging
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from core import context
from core.cache import LocalCache
from core.errors import InvalidRequest
from core.parsers import MAX_JSON_DEPTH, has_nul, json_depth, json_depth_bound
from projects.models import Project
from stripe_gateway.gateway import PLATFORM_ACCOUNT, stripe_id
from stripe_gateway.signatures import WebhookSignatureInvalid, webhook_verify
from webhooks.models import StripeEvent, StripeWebhookEndpoint
from webhooks.services.event_erasure import stripe_event_body_for_storage
from webhooks.services.fairness import event_tenant
from webhooks.services.process import bell_needed, queue_processing

logger = logging.getLogger(__name__)


# The signing secret of Tollgate's endpoint at a Stripe account (stored by `stripe_setup_webhooks`, encrypted),
# kept by each web process for ENDPOINT_SECRET_SECONDS instead of read and decrypted on every delivery. A
# delivery that no kept secret verifies is checked again against the database, so a secret stored a moment ago
# is never refused; a secret replaced in the database is refused by every process within that time (at once in
# the process that replaced it).
ENDPOINT_SECRET_SECONDS = 30.0
_endpoint_secrets = LocalCache()


def _endpoint_secret(account: str, *, fresh: bool) -> list[str]:
    kept = None if fresh else _endpoint_secrets.get(account)
    if kept is None:
        row = (
            StripeWebhookEndpoint.objects.filter(account=account)
            .values_list("secret", "previous_secret", "previous_secret_until")
            .first()
        )
        kept = row or ("", "", None)
        _endpoint_secrets.set(account, kept, ENDPOINT_SECRET_SECONDS)
    secret, previous, until = kept
    # The replaced endpoint's secret (`webhooks.services.endpoints`) while the switch lasts.
    return [s for s in (secret, previous if until is not None and until > timezone.now() else "") if s]


@receiver([post_save, post_delete], sender=StripeWebhookEndpoint)
def _endpoint_secret_forget(**_: Any) -> None:
    _endpoint_secrets.clear()


def _secrets(account: str, project: Project | None, *, fresh: bool = False) -> list[str]:
    secrets: list[str] = []
    if project is not None:
        secrets += [s.strip() for s in project.stripe_webhook_secret.split(",") if s.strip()]
    elif settings.STRIPE_WEBHOOK_SECRET:
        secrets += [s.strip() for s in settings.STRIPE_WEBHOOK_SECRET.split(",") if s.strip()]
    return secrets + _endpoint_secret(account, fresh=fresh)


def stripe_event_receive(
    *, project_id: str | None, payload: bytes, signature: str
) -> tuple[StripeEvent, bool]:
    """Verifies and stores one delivery. Returns (event, created); a duplicate delivery is not stored again."""
    project = None
    account = PLATFORM_ACCOUNT
    if project_id is not None:
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise InvalidRequest("Unknown project.", code="unknown_project")
        account = project.pk
    try:
        text = payload.decode("utf-8")  # what Stripe signs and sends; the SDK would fail on anything else
    except UnicodeDecodeError as exc:
        raise InvalidRequest("The body is not UTF-8.", code="invalid_payload") from exc
    try:
        try:
            webhook_verify(payload=payload, header=signature, secrets=_secrets(account, project))
        except WebhookSignatureInvalid:
            webhook_verify(payload=payload, header=signature, secrets=_secrets(account, project, fresh=True))
    except WebhookSignatureInvalid as exc:
        raise InvalidRequest(f"Invalid Stripe signature: {exc}.", code="invalid_signature") from exc
    return stripe_event_store(
        account=account, project=project, body=stripe_event_parse(text), background=True
    )


_MAX_CREATED = 2**53  # a Unix time a JSON number carries exactly, far within a BigIntegerField


def stripe_event_parse(text: str) -> dict[str, Any]:
    """The event a signed body holds, refused (400 `invalid_payload`) unless it can be stored as it is: a JSON
    object within the API's nesting limit and without NUL characters (PostgreSQL's jsonb cannot hold one), with
    an `evt_` id and a `type` that fit their columns, and a `created` that is a whole number of seconds."""
    raw = text.encode()
    if json_depth_bound(raw) > MAX_JSON_DEPTH and json_depth(raw) > MAX_JSON_DEPTH:
        raise InvalidRequest(
            f"The body is nested deeper than {MAX_JSON_DEPTH} levels.", code="invalid_payload"
        )
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest("The body is not JSON.", code="invalid_payload") from exc
    if "\\u0000" in text and has_nul(body):
        raise InvalidRequest("The body holds a NUL character (\\u0000).", code="invalid_payload")
    created = body.get("created", 0) if isinstance(body, dict) else None
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("id"), str)
        or not body["id"].startswith("evt_")
        or len(body["id"]) > 255
        or not isinstance(body.get("type"), str)
        or not 1 <= len(body["type"]) <= 100
        or not isinstance(body.get("api_version") or "", str)
        or not isinstance(body.get("data") or {}, dict)
        or isinstance(created, bool)
        or not isinstance(created, int | None)
        or not 0 <= (created or 0) <= _MAX_CREATED
    ):
        raise InvalidRequest("The body is not a Stripe event.", code="invalid_payload")
    return body


def stripe_event_store(
    *, account: str, project: Project | None, body: dict[str, Any], background: bool = False
) -> tuple[StripeEvent, bool]:
    """Stores an event once per (account, event id) — race-safe — and queues its processing once stored. The
    INSERT commits on its own (the intake's one write), or with the caller's transaction. `background`: the
    publish goes to the process's background publisher (the intake, which answers Stripe whatever the broker
    does); a command or task publishes in-line, so nothing it stored waits for the sweep after it exits."""

    key = ordering_key(account, body)
    stored = stripe_event_body_for_storage(ordering_key=key, body=body)

    def insert() -> StripeEvent:
        return StripeEvent.objects.create(
            account=account,
            project=project,
            stripe_event_id=body["id"],
            type=str(body["type"])[:100],
            api_version=str(body.get("api_version") or "")[:50],
            stripe_created=int(body.get("created") or 0),
            payload=stored,
            ordering_key=key,
            tenant=event_tenant(project=project, body=body),
            request_id="" if (request_id := context.request_id.get()) == "-" else request_id,
        )

    try:
        if connection.in_atomic_block:
            with transaction.atomic():  # a savepoint: a duplicate must not break the caller's transaction
                event = insert()
        else:
            event = insert()  # autocommit: the INSERT is a transaction of its own
    except IntegrityError:
        return StripeEvent.objects.get(account=account, stripe_event_id=body["id"]), False
    transaction.on_commit(lambda: _queue(event, background=background))
    return event, True


def _queue(event: StripeEvent, *, background: bool) -> None:
    """Rings a worker for the stored event, unless workers are running and none is idle (a running one sees the
    event: `process.bell_needed`). In the `background`, without waiting for the broker: a real broker's publish
    goes to the process's background publisher (config.celery.publisher), so that Stripe's delivery is answered
    whatever the broker does (a silent one holds the publisher's thread, not the request). A bell not sent yet
    rings for every event stored before it is (`coalesce`: a burst rings once per publish, not once per event).
    An event whose bell is dropped (the publisher's queue full) or not run (the process exits first) is stored:
    beat's sweep rings for it. Eager (tests, the embedded mode without a broker) it is applied here, in-line, as
    `.delay()` does."""
    from config.celery import app, publisher

    queue = partial(queue_processing, event.pk, event.ordering_key)
    if app.conf.task_always_eager or not background:
        queue()
    elif not bell_needed():
        return  # workers are running and none is idle: a running one sees this event (process.bell_needed)
    elif not publisher.submit(queue, coalesce="stripe-events"):
        logger.warning(
            "Stripe event %s not queued (the publisher is full); the sweep will queue it.", event.pk
        )


def ordering_key(account: str, body: dict[str, Any]) -> str:
    """The key whose events are applied one at a time: the Stripe customer the event is about (every object
    a customer's money touches carries it), else the payment intent, subscription, invoice or charge it names
    (a dispute names no customer), else the object itself."""
    obj = (body.get("data") or {}).get("object") or {}
    customer = stripe_id(obj.get("id")) if obj.get("object") == "customer" else stripe_id(obj.get("customer"))
    if customer:
        return f"{account}:{customer}"[:300]
    for field in ("payment_intent", "subscription", "invoice", "charge"):
        if stripe_id(obj.get(field)):
            return f"{account}:{stripe_id(obj.get(field))}"[:300]
    return f"{account}:{stripe_id(obj.get('id')) or body.get('id', '')}"[:300]
