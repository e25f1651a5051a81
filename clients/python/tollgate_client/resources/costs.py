"""What your own product costs you: the project's cost table, versioned (AI usage priced by model and token)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tollgate_client.pagination import Page
from tollgate_client.resources._base import Resource, compact, path
from tollgate_client.types import CostTable


class CostTables(Resource):
    """Versions are never changed: a new price is a new version, applying from its `starts_at` (never before
    now) until the next one starts. A feature's usage formula of type `cost` prices usage events by the version
    in force at each event's time."""

    def create(
        self,
        *,
        currency: str,
        models: dict[str, dict[str, Any]],
        starts_at: str | datetime | None = None,
        idempotency_key: str | None = None,
    ) -> CostTable:
        """The next version: `models` is `{"<model>": {"<dimension>": {"micros": m, "per": n}}}` (m micro-units of
        `currency` per n units; a bare integer is micro-units per one unit). `starts_at` defaults to now; before
        now → `starts_in_past`, not after the latest version's → `starts_before_latest`."""
        body = compact(currency=currency, models=models, starts_at=starts_at)
        return self._post(CostTable, "/cost_tables", body, idempotency_key=idempotency_key)

    def list(self) -> Page[CostTable]:
        """Every version, newest first, on one page (`current` on the one in force)."""
        return self._list(CostTable, "/cost_tables", {})

    def retrieve(self, table_id: str) -> CostTable:
        return self._get(CostTable, path("/cost_tables/{}", table_id))
