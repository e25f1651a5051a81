"""Per-account object storage: every Stripe object the account owns, as the JSON-shaped dict a retrieve
renders, grouped by ``object`` type in creation order.

All emulator state lives here (events and webhook endpoints included), which is what makes reset and
``--data`` persistence generic: a backend never keeps state of its own. Keys starting with ``_`` are private
(the webhook secret, the list cursor ``_seq``) and are stripped by :func:`render`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from stripe_emulator.core.errors import ResourceMissing

StripeObject = dict[str, Any]


def clone(value: Any) -> Any:
    """Deep copy of JSON-shaped data, dropping private ``_`` keys; much cheaper than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items() if not (isinstance(k, str) and k.startswith("_"))}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


class Store:
    def __init__(self) -> None:
        self._by_type: dict[str, dict[str, StripeObject]] = {}
        self._by_id: dict[str, StripeObject] = {}
        self._seq = 0

    # -- writes --------------------------------------------------------------------------------------------

    def insert(self, obj: StripeObject) -> StripeObject:
        """Store a new object. Its ``_seq`` orders lists and resolves ``starting_after`` cursors."""
        object_type = obj["object"]
        self._seq += 1
        obj["_seq"] = self._seq
        self._by_type.setdefault(object_type, {})[obj["id"]] = obj
        self._by_id[obj["id"]] = obj
        return obj

    def replace(self, obj: StripeObject) -> StripeObject:
        """Swap the stored object for ``obj`` (same id, e.g. a deletion tombstone), keeping its position."""
        old = self._by_id[obj["id"]]
        obj["_seq"] = old["_seq"]
        self._by_type[old["object"]][obj["id"]] = obj
        self._by_id[obj["id"]] = obj
        return obj

    def remove(self, object_id: str) -> None:
        obj = self._by_id.pop(object_id, None)
        if obj is not None:
            self._by_type[obj["object"]].pop(object_id, None)

    # -- reads ---------------------------------------------------------------------------------------------

    def get(self, object_type: str, object_id: str) -> StripeObject | None:
        return self._by_type.get(object_type, {}).get(object_id)

    def require(self, object_type: str, object_id: str, *, param: str | None = "id") -> StripeObject:
        """The live object, or Stripe's 404 ``No such <type>: '<id>'`` naming ``param``."""
        obj = self.get(object_type, object_id) if isinstance(object_id, str) else None
        if obj is None or obj.get("deleted"):
            raise ResourceMissing(object_type, str(object_id), param=param)
        return obj

    def find(self, object_id: str) -> StripeObject | None:
        """Any object by id, whatever its type (used by ``expand`` and list cursors)."""
        return self._by_id.get(object_id)

    def newest_first(
        self, object_type: str, predicate: Callable[[StripeObject], bool] | None = None
    ) -> list[StripeObject]:
        """Live objects of a type, newest first as Stripe lists them (by `created`, which a test clock's
        objects take from the clock; the later stored first within one second); tombstones are never listed."""
        objects = [o for o in self._by_type.get(object_type, {}).values() if not o.get("deleted")]
        objects.reverse()
        objects.sort(key=lambda o: int(o.get("created") or 0), reverse=True)  # stable: ties stay newest first
        if predicate is not None:
            objects = [o for o in objects if predicate(o)]
        return objects

    def iter_type(self, object_type: str) -> Iterator[StripeObject]:
        """All objects of a type including tombstones, oldest first."""
        return iter(list(self._by_type.get(object_type, {}).values()))

    def objects(self) -> list[StripeObject]:
        """Every stored object of every type, tombstones included."""
        return list(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    # -- persistence ---------------------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {"seq": self._seq, "objects": [o for objs in self._by_type.values() for o in objs.values()]}

    @classmethod
    def load(cls, data: dict[str, Any]) -> Store:
        store = cls()
        for obj in sorted(data.get("objects", []), key=lambda o: o["_seq"]):
            store._by_type.setdefault(obj["object"], {})[obj["id"]] = obj
            store._by_id[obj["id"]] = obj
        store._seq = int(data.get("seq", 0))
        return store
