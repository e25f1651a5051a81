"""Which version of each of its products a subscription is on at an instant, from its items as entitlements keeps
them (`SubscriptionSource.items`): the version each item is on, or the one a move scheduled for the period's end
puts it on once that has passed."""

from datetime import datetime
from typing import Any


def subscription_versions(
    items: list[dict[str, Any]] | None, now: datetime
) -> tuple[dict[str, int], list[datetime]]:
    """The version of each product a subscription's `items` are on at `now` (the first item of a product names
    it; an item mirrored before versions is on version 1; a move scheduled for `now` or before is in force), and
    when a scheduled move takes effect later."""
    versions: dict[str, int] = {}
    later: list[datetime] = []
    for item in items or []:
        version = int(item.get("version") or 1)
        if item.get("pending_version") is not None:
            at = datetime.fromisoformat(item["pending_at"])
            if now >= at:
                version = int(item["pending_version"])
            else:
                later.append(at)
        versions.setdefault(item["product"], version)
    return versions, later
