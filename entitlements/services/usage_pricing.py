"""Usage events that give their dimensions (a model call's tokens) instead of a quantity: `UsagePricer` turns them
into the feature's units by its formula (`catalog.formulas`) and prices them by the project's cost table in force
at the event's time (`costs`), once per event, before it is stored. What it made of them is stored with the event
(`UsageEvent.dimensions`, `cost_micros`): a later formula or cost table never rewrites it.

A cost formula's units come from the exact cost (rounded up once); the cost shown and stored is that cost rounded
to the nearest micro-unit. A rates formula's units come from its own rates: the cost table only prices the call
for the record, so a dimension it does not price leaves the event without a cost, never refused.
"""

from datetime import datetime
from typing import Any

from catalog.formulas import MAX_UNITS, CompiledFormula, formula_compile, formula_units
from catalog.models import Feature
from core.errors import InvalidRequest
from costs.pricing import CostTableRow, cost_exact, half_up, rates_at
from costs.selectors import cost_table_rows
from projects.models import Project

MAX_COST_MICROS = 2**63 - 1  # what the event's `cost_micros` (a bigint) holds


class UsagePricer:
    """One batch's pricing: the project's cost tables are read once, on the first event that names a model."""

    def __init__(self, project: Project, features: dict[str, Feature]) -> None:
        self.project = project
        self.formulas = {key: feature.usage_formula for key, feature in features.items()}
        self.compiled: dict[str, CompiledFormula] = {}
        self._tables: list[CostTableRow] | None = None

    def tables(self) -> list[CostTableRow]:
        if self._tables is None:
            self._tables = cost_table_rows(project_id=self.project.pk)
        return self._tables

    def price(
        self,
        *,
        feature: str,
        model: str | None,
        dimensions: dict[str, int],
        at: datetime,
        param: str = "",
    ) -> tuple[int, dict[str, Any], int | None]:
        """(units, what is stored as the event's `dimensions`, its cost in micro-units or None). 400
        `feature_has_no_formula`, `unknown_dimension`, `model_not_priced`, `usage_too_large`, naming the event's
        field by `param`."""

        def named(name: str) -> str:
            return f"{param}.{name}" if param else name

        formula = self.formulas.get(feature)
        if formula is None:
            raise InvalidRequest(
                f"{named('dimensions')}: {feature!r} declares no usage formula; give `quantity`.",
                code="feature_has_no_formula",
                param=named("dimensions"),
            )
        compiled = self.compiled.get(feature)
        if compiled is None:
            compiled = self.compiled[feature] = formula_compile(formula)
        record: dict[str, Any] = {"model": model, "values": dimensions}
        exact: tuple[int, int] | None = None
        found = rates_at(self.tables(), model, at) if model is not None else None
        if found is not None:
            table, rates = found
            try:
                exact = cost_exact(rates, dimensions, param=named("dimensions"))
            except InvalidRequest as error:
                if compiled.cost is not None or error.code != "unknown_dimension":
                    raise  # a cost formula's units are the cost: a dimension it cannot price is refused
            if exact is not None:
                record.update(cost_table=table.version, currency=table.currency)
        try:
            units = formula_units(compiled, model=model, dimensions=dimensions, cost=exact)
        except InvalidRequest as error:
            # Re-said with the event's own field (`events[3].model`), the message unchanged.
            raise InvalidRequest(
                error.message.replace(f"{error.param}:", f"{named(error.param or 'dimensions')}:", 1),
                code=error.code,
                param=named(error.param or "dimensions"),
            ) from error
        cost = None if exact is None else half_up(*exact)
        if units > MAX_UNITS or (cost is not None and cost > MAX_COST_MICROS):
            raise InvalidRequest(
                f"{named('dimensions')}: the formula makes {units:,} units of them (at most {MAX_UNITS:,} an "
                "event, as a quantity), or a cost past what an event records.",
                code="usage_too_large",
                param=named("dimensions"),
            )
        return units, record, cost
