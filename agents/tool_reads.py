"""The read tools: what the REST API's reads answer about one of the project's customers, through the same
selectors, by the tenant's own ids. A customer of another project is a missing one."""

from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from agents.models import AgentKey
from billing import selectors as billing_selectors
from billing.apis.margins import MarginOutput, margins_window
from billing.representations import InvoiceOutput, SubscriptionOutput
from billing.services.margins import margins_report
from catalog.models import Feature
from catalog.selectors import feature_by_key
from core.errors import InvalidRequest
from core.pagination import list_body
from customers import selectors as customer_selectors
from customers.models import Customer
from customers.representations import CustomerOutput
from entitlements.explain import entitlements_explain
from entitlements.selectors import entitlements_list

# The most rows a list tool answers (newest first; `has_more` says some were left out).
LIST_LIMIT = 100
_USAGE_TYPES = (Feature.Type.METERED, Feature.Type.ALLOCATION)


def customer_of(key: AgentKey, customer: str) -> Customer:
    """The key's project's customer by the tenant's id (or ours), as `GET /customers/{id}` finds it; else 404."""
    return customer_selectors.customer_lookup(project=key.project, customer_id=customer)


def customer_lookup(key: AgentKey, arguments: dict[str, Any]) -> dict[str, Any]:
    return dict(CustomerOutput(customer_of(key, arguments["customer"])).data)


def subscriptions_list(key: AgentKey, arguments: dict[str, Any]) -> dict[str, Any]:
    customer = customer_of(key, arguments["customer"])
    rows = list(
        billing_selectors.subscription_list(project=key.project, customer=customer.external_id)[
            : LIST_LIMIT + 1
        ]
    )
    return list_body(SubscriptionOutput(rows[:LIST_LIMIT], many=True).data, len(rows) > LIST_LIMIT)


def invoices_list(key: AgentKey, arguments: dict[str, Any]) -> dict[str, Any]:
    customer = customer_of(key, arguments["customer"])
    rows = list(
        billing_selectors.invoice_list(project=key.project, customer=customer.external_id)[: LIST_LIMIT + 1]
    )
    return list_body(InvoiceOutput(rows[:LIST_LIMIT], many=True).data, len(rows) > LIST_LIMIT)


def usage_summary(key: AgentKey, arguments: dict[str, Any]) -> dict[str, Any]:
    """The period's use of each metered feature (and what is in use of each allocation), as `GET /entitlements`
    answers it: used, limit, remaining, when it resets."""
    customer = customer_of(key, arguments["customer"])
    wanted = None
    if "feature" in arguments:
        wanted = feature_by_key(project=key.project, key=arguments["feature"])
        if wanted.type not in _USAGE_TYPES:
            raise InvalidRequest(
                f"{wanted.key!r} is a {wanted.type} feature: it counts no usage.",
                code="feature_not_metered",
                param="feature",
            )
    answer = entitlements_list(project=key.project, external_id=customer.external_id)
    rows = [
        row
        for row in answer["entitlements"]
        if row["type"] in _USAGE_TYPES and (wanted is None or row["feature"] == wanted.key)
    ]
    return {"customer": customer.external_id, "usage": rows}


def _plain(value: Any) -> Any:
    """A value of the explanation as JSON writes it: times in ISO 8601 (UTC), durations in seconds."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def entitlements_explain_tool(key: AgentKey, arguments: dict[str, Any]) -> dict[str, Any]:
    """Why the customer may or may not use each feature (the operators' "explain entitlements")."""
    customer = customer_of(key, arguments["customer"])
    explained = asdict(entitlements_explain(project=key.project, customer=customer))
    explained["past_due_grace_seconds"] = explained.pop("past_due_grace")
    plain: dict[str, Any] = _plain(explained)
    return plain


def margins(key: AgentKey, arguments: dict[str, Any]) -> dict[str, Any]:
    """`GET /margins`: billed against cost per month and currency, by customer, feature and model, least
    profitable first, for [from, to) (default: this month so far)."""
    start, end = margins_window(arguments.get("from"), arguments.get("to"))  # as the API: a year at most
    customer = customer_of(key, arguments["customer"]) if "customer" in arguments else None
    rows = margins_report(project=key.project, start=start, end=end, customer=customer)
    return list_body(MarginOutput(rows[:LIST_LIMIT], many=True).data, len(rows) > LIST_LIMIT)
