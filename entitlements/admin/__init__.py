"""The entitlements back office. Django's admin discovery imports this package; importing the modules below
registers their ModelAdmins:

- `records`: grants, revocations, spend caps, purchases, holds, thresholds, auto-recharges, settings, and
  the forms and actions that grant and revoke entitlements (used on the customer page too), the customer inlines;
- `credits`: credit lots, their ledger, and the plan credits scheduled to come;
- `entities`: customers' entities (seats, workspaces) and each one's use per period;
- `usage`: usage events (an operator voids one) and their corrections.
"""

from entitlements.admin import credits, entities, records, usage

__all__ = ["credits", "entities", "records", "usage"]
