"""The sweep that ends holds past their expiry (`entitlements.tasks.holds_expire`, every 30 s): each is ended
as `services.holds` ends any hold, its units given back in the transaction that marks it expired, so a process
killed while holding leaves nothing the sweep does not give back."""

from datetime import datetime

from django.db.models import F, Q
from django.utils import timezone

from customers.selectors import customer_now
from entitlements.models import Hold
from entitlements.services.hold_ending import _end


def holds_expire(*, now: datetime | None = None, limit: int = 500) -> int:
    """Ends the active holds past their `expires_at` (oldest first, at most `limit`), giving their units back;
    the number ended. A test clock's customer's holds are past it once the clock is (`customer_now`)."""
    now = now or timezone.now()
    past = Q(customer__test_clock__isnull=True, expires_at__lte=now) | Q(
        customer__test_clock__isnull=False, expires_at__lte=F("customer__test_clock__frozen_time")
    )
    due = list(
        Hold.objects.select_related("customer__test_clock", "feature", "project")
        .filter(past, status=Hold.Status.ACTIVE)
        .order_by("expires_at")[:limit]
    )
    return sum(
        1
        for hold in due
        if _end(hold, Hold.Status.EXPIRED, now=customer_now(customer=hold.customer, now=now))
    )
