"""Usage events that give their dimensions (a model call's tokens) instead of a quantity: `UsagePricer` turns them
into the feature's units by its formula (`catalog.formulas`) and prices them by the project's cost table in force
at the event's time (`costs`), once per event, before it is stored. What it made of them is stored with the event
(`UsageEvent.dimensions`, `cost_micros`): a later formula or cost table never rewrites it.
"""

from datetime import datetime
from typing import Any

from catalog.formulas import CompiledFormula, formula_compile, formula_units
from catalog.models import Feature
from core.errors import InvalidRequest
from costs.pricing import CostTableRow, cost_micros, rates_at
from costs.selectors import cost_table_rows
from projects.models import Project


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
        `feature_has_no_formula`, `unknown_dimension`, `model_not_priced`, naming the event's field by `param`."""

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
        cost: int | None = None
        found = rates_at(self.tables(), model, at) if model is not None else None
        if found is not None:
            table, rates = found
            cost = cost_micros(rates, dimensions, param=named("dimensions"))
            record.update(cost_table=table.version, currency=table.currency)
        try:
            units = formula_units(compiled, model=model, dimensions=dimensions, cost_micros=cost)
        except InvalidRequest as error:
            # Re-said with the event's own field (`events[3].model`), the message unchanged.
            raise InvalidRequest(
                error.message.replace(f"{error.param}:", f"{named(error.param or 'dimensions')}:", 1),
                code=error.code,
                param=named(error.param or "dimensions"),
            ) from error
        return units, record, cost
