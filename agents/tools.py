"""The tools an agent key may call, and `tool_call`, the one way to call them (the MCP server's and the tests').

Each tool is the REST API's own reads and services on the key's project, by the tenant's ids; a tool outside
the key's `tools`, a revoked key, arguments its schema refuses, or past the key's rate limit is refused before
anything runs. Every call is audited (`agent.tool_call`, the key as the actor), refusals too. Money moves are
two steps (`agents.services.moves`): a `*_request` tool previews the move and answers a one-time confirmation id,
and only `move_confirm` — by a key with `can_confirm` — or an operator in the admin makes it.
"""

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from agents import tool_reads, tool_writes
from agents.arguments import ArgumentError, arguments_check
from agents.models import AgentKey
from agents.services import moves
from core.audit import audit_record
from core.errors import ApiError
from core.throttling import request_count

logger = logging.getLogger(__name__)

READ, WRITE, MONEY, CONFIRM = "read", "write", "money", "confirm"
_ID = {"type": "string", "minLength": 1, "maxLength": 255}
_REASON = {"type": "string", "minLength": 1, "maxLength": 500, "description": "Why (kept in the audit log)."}
_URL = {"type": "string", "minLength": 1, "maxLength": 2000}
_LOGGED_ARGUMENTS_MAX = 4000  # characters of JSON; longer arguments are logged as their size only
# Set while a request counted against its key's rate limit by its transport (agents.mcp_http) is served: a tool
# call in it is not counted again.
_rate_counted: ContextVar[bool] = ContextVar("agent_rate_counted", default=False)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str  # one paragraph, shown to agents
    parameters: dict[str, Any]  # JSON Schema: an object of named properties, none other
    kind: str  # read | write | money | confirm
    run: Callable[[AgentKey, dict[str, Any]], dict[str, Any]] = field(repr=False, compare=False)


class ToolError(Exception):
    """A tool call that did not succeed, with a stable `code`, the HTTP `status` the REST API would answer, and a
    message for the agent; `param` names the argument at fault, `retry_after` (seconds) comes with
    `rate_limited`."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int = 400,
        param: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.message = message
        self.code = code
        self.status = status
        self.param = param
        self.retry_after = retry_after
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.param is not None:
            body["param"] = self.param
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        return body


class ToolRefused(ToolError):
    """Refused before the tool ran: `key_revoked`, `project_suspended`, `unknown_tool`, `tool_not_allowed`,
    `confirm_not_allowed`, `rate_limited`, `invalid_arguments`. Nothing was done."""


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _customer(description: str = "The customer: your user id (its external_id).") -> dict[str, Any]:
    return {**_ID, "description": description}


def _refund_request(key: AgentKey, arguments: dict[str, Any]) -> dict[str, Any]:
    return moves.refund_request(
        key=key, payment_id=arguments["payment"], amount=arguments.get("amount"), reason=arguments["reason"]
    )


def _credit_note_request(key: AgentKey, arguments: dict[str, Any]) -> dict[str, Any]:
    return moves.credit_note_request(
        key=key,
        invoice_id=arguments["invoice"],
        amount=arguments["amount"],
        refund_amount=arguments.get("refund_amount", 0),
        credit_amount=arguments.get("credit_amount", 0),
        out_of_band_amount=arguments.get("out_of_band_amount", 0),
        reason=arguments["reason"],
    )


def _subscription_cancel_request(key: AgentKey, arguments: dict[str, Any]) -> dict[str, Any]:
    return moves.subscription_cancel_request(
        key=key, subscription_id=arguments["subscription"], at_period_end=arguments.get("at_period_end", True)
    )


def _move_confirm(key: AgentKey, arguments: dict[str, Any]) -> dict[str, Any]:
    return moves.move_confirm(
        project=key.project,
        confirmation_id=arguments["confirmation_id"],
        actor=key.actor(),
        confirming_key=key,
    )


_TOOLS = (
    Tool(
        "customer_lookup",
        "One customer by your user id: email, name, metadata, currency, when created.",
        _schema({"customer": _customer()}, ["customer"]),
        READ,
        tool_reads.customer_lookup,
    ),
    Tool(
        "subscriptions_list",
        "The customer's subscriptions, newest first, as mirrored from Stripe: status, items, current period, "
        "whether they cancel at the period's end (at most 100; `has_more` says more exist).",
        _schema({"customer": _customer()}, ["customer"]),
        READ,
        tool_reads.subscriptions_list,
    ),
    Tool(
        "invoices_list",
        "The customer's Stripe invoices, newest first: status, totals in minor units of their currency, lines and "
        "links (at most 100; `has_more` says more exist).",
        _schema({"customer": _customer()}, ["customer"]),
        READ,
        tool_reads.invoices_list,
    ),
    Tool(
        "usage_summary",
        "The customer's use this period of each metered feature (and what is in use of each allocation "
        "feature), as the entitlements API answers it: used, limit, remaining, when it resets. Give `feature` "
        "(its key) for one.",
        _schema({"customer": _customer(), "feature": {**_ID, "maxLength": 100}}, ["customer"]),
        READ,
        tool_reads.usage_summary,
    ),
    Tool(
        "entitlements_explain",
        "Why the customer may or may not use each feature now: the answer, and every subscription, purchase, "
        "grant, revocation or credit lot that gives it, blocks it, or no longer gives it, with why in words.",
        _schema({"customer": _customer()}, ["customer"]),
        READ,
        tool_reads.entitlements_explain_tool,
    ),
    Tool(
        "margins_report",
        "What customers were billed for their usage against what it cost you, per month (UTC) and currency, by "
        "customer, feature and model, least profitable first (at most 100 rows), for the usage recorded in "
        "[from, to): ISO 8601 dates or times, default this month so far. Money in micro-units (1 USD = "
        "1,000,000). Give `customer` for one customer's usage.",
        _schema(
            {
                "from": {"type": "string", "maxLength": 40},
                "to": {"type": "string", "maxLength": 40},
                "customer": _customer("Only this customer's usage (your user id)."),
            },
            [],
        ),
        READ,
        tool_reads.margins,
    ),
    Tool(
        "checkout_link_create",
        "Starts a Stripe Checkout for the customer and one price (its key or id): a subscription for a "
        "recurring price, a purchase for a one-time one. Answers the hosted page's `url` to send the customer "
        "to; the URLs must be on the project's allowed redirect hosts. Nothing is charged until they pay.",
        _schema(
            {"customer": _customer(), "price": _ID, "success_url": _URL, "cancel_url": _URL},
            ["customer", "price", "success_url", "cancel_url"],
        ),
        WRITE,
        tool_writes.checkout_link_create,
    ),
    Tool(
        "portal_link_create",
        "A one-time link to Stripe's billing portal for the customer (who must have bought something), "
        "returning to `return_url` (on the project's allowed redirect hosts).",
        _schema({"customer": _customer(), "return_url": _URL}, ["customer", "return_url"]),
        WRITE,
        tool_writes.portal_link_create,
    ),
    Tool(
        "grant_create",
        "Grants the customer a feature (its key), audited with this key and the `reason`: on metered, credits "
        "and allocation features `value` adds to what purchases give (null: unlimited; credits: the credits, "
        "required), on boolean/static it sets the value; optionally until `expires_at` (ISO 8601 with offset).",
        _schema(
            {
                "customer": _customer(),
                "feature": {**_ID, "maxLength": 100},
                "value": {"description": "Any JSON value, as the feature's type takes it (see above)."},
                "reason": _REASON,
                "expires_at": {"type": "string", "format": "date-time", "maxLength": 40},
            },
            ["customer", "feature", "reason"],
        ),
        WRITE,
        tool_writes.grant_create_tool,
    ),
    Tool(
        "grant_revoke",
        "Ends a grant now (unspent credits of a credits grant are taken back), audited with this key and the "
        "`reason`. A grant already ended is not found (404): nothing more is taken back.",
        _schema({"grant": _ID, "reason": _REASON}, ["grant", "reason"]),
        WRITE,
        tool_writes.grant_revoke,
    ),
    Tool(
        "refund_request",
        "Asks for a refund of a paid payment: all that is left, or `amount` (minor units). Nothing is refunded: "
        "answers a preview (amount, currency, customer, what was refunded already) and a one-time "
        "`confirmation_id`, valid 15 minutes; the refund is made only when a person (or a key allowed to) "
        "confirms it with `move_confirm`. To correct an invoice rather than a payment, `credit_note_request`.",
        _schema(
            {"payment": _ID, "amount": {"type": "integer", "minimum": 1}, "reason": _REASON},
            ["payment", "reason"],
        ),
        MONEY,
        _refund_request,
    ),
    Tool(
        "credit_note_request",
        "Asks for a credit note of `amount` (minor units) of an open or paid invoice (its Tollgate id, from "
        "`invoices_list`). What it credits first lowers what the invoice still owes; the rest is given back as "
        "`refund_amount` (to the card) + `credit_amount` (the customer's Stripe balance) + `out_of_band_amount` "
        "(settled outside Stripe), 0 by default. Nothing is credited: answers a preview (invoice, customer, "
        "amounts, what it lowers the amount due by) and a one-time `confirmation_id`, valid 15 minutes; the "
        "credit note is issued at Stripe only when a person (or a key allowed to) confirms it with "
        "`move_confirm`, and Stripe judges the amounts then.",
        _schema(
            {
                "invoice": _ID,
                "amount": {"type": "integer", "minimum": 1},
                "refund_amount": {"type": "integer", "minimum": 0},
                "credit_amount": {"type": "integer", "minimum": 0},
                "out_of_band_amount": {"type": "integer", "minimum": 0},
                "reason": _REASON,
            },
            ["invoice", "amount", "reason"],
        ),
        MONEY,
        _credit_note_request,
    ),
    Tool(
        "subscription_cancel_request",
        "Asks for a subscription's cancellation, at the end of its period (default) or now (`at_period_end`: "
        "false). Nothing is canceled: answers a preview (customer, product, when it would end) and a one-time "
        "`confirmation_id`, valid 15 minutes; it is canceled only when a person (or a key allowed to) confirms "
        "it with `move_confirm`.",
        _schema({"subscription": _ID, "at_period_end": {"type": "boolean"}}, ["subscription"]),
        MONEY,
        _subscription_cancel_request,
    ),
    Tool(
        "move_confirm",
        "Confirms a money move asked for with a `*_request` tool, by its `confirmation_id`, and makes it: once — "
        "confirming it again answers the same result. Only for keys allowed to confirm money moves; refused "
        "once the confirmation expired or was declined.",
        _schema({"confirmation_id": _ID}, ["confirmation_id"]),
        CONFIRM,
        _move_confirm,
    ),
)
TOOLS: dict[str, Tool] = {tool.name: tool for tool in _TOOLS}
READ_ONLY = frozenset(name for name, tool in TOOLS.items() if tool.kind == READ)


def rate_limited(key: AgentKey) -> int | None:
    """Counts one more request of `key` this minute (its own bucket, API_RATE_LIMIT_PER_MINUTE as for project
    keys): None while within the limit, else the seconds until the window ends."""
    limit = settings.API_RATE_LIMIT_PER_MINUTE
    if not limit:
        return None
    count, reset_in, _ = request_count(f"agent_key:{key.pk}", ())
    return reset_in if count > limit else None


@contextmanager
def rate_counted() -> Iterator[None]:
    """What runs inside (and the threads and tasks it starts) was counted by `rate_limited` already: the HTTP
    transport counts each request, tools/call or not, so a tool call in it is not counted again."""
    token = _rate_counted.set(True)
    try:
        yield
    finally:
        _rate_counted.reset(token)


def _admitted(key: AgentKey | None, name: str, arguments: Any) -> tuple[AgentKey, Tool]:
    """The key and the tool, if this key may call it now with these arguments; else ToolRefused. Counted against
    the key's rate limit first (unless its transport counted it), refused calls too."""
    if key is None or key.is_revoked:
        raise ToolRefused("This agent key is revoked.", code="key_revoked", status=401)
    if not key.project.is_active:
        raise ToolRefused("This project is suspended.", code="project_suspended", status=403)
    if not _rate_counted.get():
        retry_after = rate_limited(key)
        if retry_after is not None:
            raise ToolRefused(
                "Too many tool calls.", code="rate_limited", status=429, retry_after=retry_after
            )
    tool = TOOLS.get(name)
    if tool is None:
        raise ToolRefused(f"No such tool: {name!r}.", code="unknown_tool", status=404)
    if name not in key.tools:
        raise ToolRefused(f"This key may not call {name}.", code="tool_not_allowed", status=403)
    if tool.kind == CONFIRM and not key.can_confirm:
        raise ToolRefused("This key may not confirm money moves.", code="confirm_not_allowed", status=403)
    try:
        arguments_check(tool.parameters, arguments)
    except ArgumentError as exc:
        raise ToolRefused(str(exc), code="invalid_arguments", status=400, param=exc.param) from exc
    return key, tool


def _without_nul(value: Any) -> Any:
    """`value` with each NUL character of its strings (and object keys) replaced by U+FFFD: a JSON column of
    PostgreSQL cannot hold `\\u0000`."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(str(name)): _without_nul(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(item) for item in value]
    return value


def _logged(arguments: Any) -> Any:
    try:
        text = json.dumps(arguments, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = ""
    if not text or len(text) > _LOGGED_ARGUMENTS_MAX:
        return {"omitted_chars": len(text)}
    return _without_nul(json.loads(text))


def _audit(key: AgentKey, name: str, arguments: Any, error: ToolError | None) -> None:
    outcome = "ok" if error is None else "refused" if isinstance(error, ToolRefused) else "failed"
    after = {"tool": _without_nul(str(name)[:100]), "arguments": _logged(arguments), "outcome": outcome}
    if error is not None:
        after["code"] = error.code
    with transaction.atomic():
        audit_record(
            actor=key.actor(), action="agent.tool_call", target=key, project=key.project, after=after
        )


def _audit_refusal(key: AgentKey, name: Any, arguments: Any, error: ToolError) -> None:
    """`_audit` of a call that did not succeed; an audit that fails is logged and must not hide the call's error."""
    try:
        _audit(key, name, arguments, error)
    except Exception:
        logger.exception("The %s call of %r could not be audited.", error.code, str(name)[:100])


def tool_call(*, key: AgentKey, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Calls tool `name` with `arguments` for `key` (read again: a key revoked or narrowed meanwhile is taken as
    it is now) and answers its JSON-able result; raises ToolError (ToolRefused: nothing was done). Audited."""
    current = AgentKey.objects.select_related("project").filter(pk=key.pk).first()
    try:
        admitted, tool = _admitted(current, name, arguments)
        result = tool.run(admitted, arguments)
    except ToolError as exc:
        _audit_refusal(current or key, name, arguments, exc)
        raise
    except ApiError as exc:
        retry_after = exc.headers.get("Retry-After")
        error = ToolError(
            exc.message,
            code=exc.code,
            status=exc.status_code,
            param=exc.param,
            retry_after=int(retry_after) if retry_after and retry_after.isdigit() else None,
        )
        _audit_refusal(current or key, name, arguments, error)
        raise error from exc
    except Exception:
        # A bug or an outage, not an answer: the call is audited as failed all the same, and the error goes on to
        # the transport (which logs it and answers `internal_error`).
        _audit_refusal(
            current or key, name, arguments, ToolError("The tool failed.", code="internal_error", status=500)
        )
        raise
    _audit(admitted, name, arguments, None)
    return result
