"""Wire layer, outbound: an object as a retrieve returns it (private keys stripped, ``expand[]`` applied)
and Stripe's list envelope with cursor pagination.

``expand`` is generic: a field holding another object's id is replaced by that object, found by id in the
account's store, recursively (``expand[]=product.default_price``), over lists (``data.product``) and up to
Stripe's four levels. Fields that exist only when expanded (``customer.subscriptions`` …) are built by
*includers* that services register (see :class:`stripe_emulator.core.service.Service`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stripe_emulator.core.errors import InvalidRequestError, ResourceMissing
from stripe_emulator.core.params import Params
from stripe_emulator.core.store import StripeObject, clone

if TYPE_CHECKING:
    from stripe_emulator.core.account import Account

MAX_EXPAND_DEPTH = 4
DEFAULT_LIMIT = 10
MAX_LIMIT = 100


def render(account: Account, obj: StripeObject, expand: Sequence[str] = ()) -> StripeObject:
    rendered: StripeObject = clone(obj)
    for path in expand:
        parts = path.split(".")
        if len(parts) > MAX_EXPAND_DEPTH:
            raise InvalidRequestError(
                f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property. Property: {path}",
                param="expand",
            )
        _expand(account, rendered, parts, path)
    return rendered


def _expand(
    account: Account,
    node: Any,
    parts: list[str],
    path: str,
    owner: Any = None,
    trail: str = "",
    owner_node: Any = None,
) -> None:
    """``owner`` is the object type of the nearest enclosing object (``owner_node``) and ``trail`` the hash
    fields walked from it, so includers can be registered for nested fields (``("checkout.session",
    "total_details.breakdown")``; called with the enclosing object) as well as top-level ones (``("customer",
    "sources")``; called with the object)."""
    if isinstance(node, list):
        for item in node:
            _expand(account, item, parts, path, owner, trail, owner_node)
        return
    if not isinstance(node, dict):
        return
    if "object" in node:
        owner, trail, owner_node = node["object"], "", node
    field, rest = parts[0], parts[1:]
    key = f"{trail}.{field}" if trail else field
    includer = account.emulator.registry.includes.get((str(owner), key))
    if includer is not None:
        # Includable fields are never stored, so one already here was included by an earlier path of this
        # request (``expand[]=line_items.data.discounts&expand[]=line_items.data.taxes``): keep its expansions.
        if field not in node:
            node[field] = includer(account, owner_node if trail else node)
    elif field in ("id", "object") or field not in node:
        raise InvalidRequestError(f"This property cannot be expanded ({field}).", param="expand")
    node[field] = _resolve(account, node[field], field)
    if rest:
        _expand(account, node[field], rest, path, owner, key, owner_node)


def _resolve(account: Account, value: Any, field: str) -> Any:
    if isinstance(value, list):
        return [_resolve(account, v, field) for v in value]
    if isinstance(value, str):
        target = account.store.find(value)
        if target is None:
            raise InvalidRequestError(f"This property cannot be expanded ({field}).", param="expand")
        return clone(target)
    return value  # already an object, or null


def render_list(
    account: Account,
    objects: Sequence[StripeObject],
    params: Params,
    *,
    url: str,
    object_type: str,
) -> dict[str, Any]:
    """One page of ``objects`` (already filtered, newest first), honouring ``limit``, ``starting_after``,
    ``ending_before`` and ``expand[]=data.…``. Cursors resolve by position in the list's order, so a cursor
    object that the filters exclude still works, as in Stripe."""
    limit = params.integer("limit", minimum=1, maximum=MAX_LIMIT) or DEFAULT_LIMIT
    starting_after = params.string("starting_after")
    ending_before = params.string("ending_before")
    if starting_after and ending_before:
        raise InvalidRequestError(
            "You may only specify one of these parameters: ending_before, starting_after.",
            param="ending_before",
        )
    if starting_after:
        cursor = _cursor_position(account, starting_after, object_type, "starting_after")
        older = [o for o in objects if list_position(o) < cursor]
        page, has_more = older[:limit], len(older) > limit
    elif ending_before:
        cursor = _cursor_position(account, ending_before, object_type, "ending_before")
        newer = [o for o in objects if list_position(o) > cursor]
        page, has_more = newer[-limit:], len(newer) > limit
    else:
        page, has_more = list(objects[:limit]), len(objects) > limit
    item_expand = [p[len("data.") :] for p in params.expand() if p.startswith("data.")]
    return {
        "object": "list",
        "data": [render(account, o, item_expand) for o in page],
        "has_more": has_more,
        "url": url,
    }


def list_position(obj: StripeObject) -> tuple[int, int]:
    """Where an object stands in a list, oldest lowest: by `created` (a test clock's objects take it from the
    clock, so it need not follow the order of creation), then by creation (Store.newest_first's order)."""
    return int(obj.get("created") or 0), int(obj["_seq"])


def _cursor_position(account: Account, object_id: str, object_type: str, param: str) -> tuple[int, int]:
    cursor = account.store.find(object_id)
    if cursor is None or cursor["object"] != object_type:
        raise ResourceMissing(object_type, object_id, param=param)
    return list_position(cursor)
