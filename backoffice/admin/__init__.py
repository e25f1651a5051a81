"""The back office's pages that gather several domains. Django's admin discovery imports this package; importing
the modules below registers their ModelAdmins:

- `audit`: the audit log;
- `customers`: the customer page (billing and entitlement inlines, "explain entitlements", grant and revoke);
- `projects`: the project page with its reconciliation action.
"""

from backoffice.admin import audit, customers, projects

__all__ = ["audit", "customers", "projects"]
