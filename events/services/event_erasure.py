"""A person's data in the tenant events (issue #29): an event's payload is the API's representation of what
changed, which may quote the customer (their user id, email, name); a delivery attempt keeps the first bytes of
the tenant's answer, which may echo it."""

from core.privacy import Erasure, matching, scrub_rows
from events.models import DeliveryAttempt, Event
from projects.models import Project


def events_anonymise(*, project: Project, erasure: Erasure) -> int:
    """Scrubs the project's events that quote the person, and the delivery answers that do; sequence, type and
    dates stay. Returns how many events changed."""
    events = Event.objects.filter(project=project).filter(
        matching(("data", "previous_attributes"), erasure.json_needles)
    )
    changed = scrub_rows(events, json_fields=("data", "previous_attributes"), erasure=erasure)
    attempts = DeliveryAttempt.objects.filter(delivery__project=project).filter(
        matching(("response_body", "error"), erasure.needles)
    )
    scrub_rows(attempts, text_fields=("response_body", "error"), erasure=erasure)
    return changed
