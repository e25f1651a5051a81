"""The inbox's compiled reads (`core.statements`), and what makes a stored event due, which they share with the
ORM reads of `services.process`: whether a key has an event due, asked as each key's task ends (on a burst, many
tasks end with it). The queryset its caller used to build in place."""

from datetime import datetime

from django.db.models import Q

from core.statements import Statement
from webhooks.models import StripeEvent


def due_filter(now: datetime) -> Q:
    return Q(status=StripeEvent.Status.RECEIVED) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


DUE = Statement(
    lambda key, now: (
        StripeEvent.objects.filter(due_filter(now), ordering_key=key)
        .order_by()
        .values_list("pk", flat=True)[:1]
    ),
    now=datetime,
)
