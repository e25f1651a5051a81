"""`manage.py sync_catalog <project slug> <file.yaml> [--dry-run] [--archive-missing]`: a declared catalog, applied.

The file declares features, products (with their feature values and prices) and optionally the project's default
product; `docs/catalog.example.yaml` shows every field. Each entry is validated by the API's own input
serializers, the whole file is planned (`catalog.services.sync.catalog_plan`) before anything changes, and the plan is
applied through the catalog services, so the file and the API obey the same rules. Idempotent: a second run
prints "no changes". Products and prices missing from the file are archived only with `--archive-missing`.
"""

from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework import serializers

from catalog.apis.catalog import FeatureInput, PriceInput, ProductInput
from catalog.formulas import formula_parse
from catalog.services.sync import (
    CatalogChange,
    CatalogSpec,
    FeatureSpec,
    PriceSpec,
    ProductSpec,
    catalog_apply,
    catalog_plan,
)
from core.actors import Actor
from core.errors import ApiError, InvalidRequest, translate
from projects.models import Project

TOP_LEVEL_KEYS = {"features", "products", "default_product"}


def _validated(serializer_class: type[serializers.Serializer[Any]], data: Any, path: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise CommandError(f"{path}: expected a mapping.")
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        error = translate(serializers.ValidationError(serializer.errors))
        raise CommandError(f"{path}.{error.message}")
    return dict(serializer.validated_data)


def _list(document: dict[str, Any], name: str, path: str = "") -> list[Any]:
    value = document.get(name) or []
    if not isinstance(value, list):
        raise CommandError(f"{path}{name}: expected a list.")
    return value


def parse_catalog(document: Any) -> CatalogSpec:
    """The file's content as a CatalogSpec; CommandError names the first invalid entry (`products[1].name`)."""
    if not isinstance(document, dict):
        raise CommandError("The catalog file must be a mapping with `features` and `products`.")
    unknown = sorted(set(document) - TOP_LEVEL_KEYS)
    if unknown:
        raise CommandError(f"{unknown[0]}: unknown key (expected {', '.join(sorted(TOP_LEVEL_KEYS))}).")
    features = []
    for index, entry in enumerate(_list(document, "features")):
        data = _validated(FeatureInput, entry, f"features[{index}]")
        try:
            formula = formula_parse(data.get("usage_formula"))
        except InvalidRequest as error:
            raise CommandError(f"features[{index}].{error.message}") from error
        features.append(
            FeatureSpec(
                key=data["key"],
                name=data["name"],
                type=data["type"],
                unit=data.get("unit") or "",
                usage_formula=formula,
            )
        )
    products = []
    for index, entry in enumerate(_list(document, "products")):
        path = f"products[{index}]"
        entry = dict(entry) if isinstance(entry, dict) else entry
        raw_prices = _list(entry, "prices", f"{path}.") if isinstance(entry, dict) else []
        version = entry.pop("version", None) if isinstance(entry, dict) else None
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise CommandError(f"{path}.version: expected a version number (1 or more).")
        if isinstance(entry, dict):
            entry.pop("prices", None)
        data = _validated(ProductInput, entry, path)
        prices = []
        for p_index, raw in enumerate(raw_prices):
            p_path = f"{path}.prices[{p_index}]"
            if isinstance(raw, dict) and "product" in raw:
                raise CommandError(f"{p_path}.product: prices are declared under their product.")
            price = _validated(
                PriceInput, {**raw, "product": data["key"]} if isinstance(raw, dict) else raw, p_path
            )
            price.pop("product")
            prices.append(PriceSpec(**price))
        products.append(
            ProductSpec(
                key=data["key"],
                name=data["name"],
                description=data.get("description", ""),
                active=data.get("active", True),
                public=data.get("public", False),
                features=dict(data.get("features") or {}),
                prices=tuple(prices),
                access_days=data.get("access_days"),
                account_cap=data.get("account_cap"),
                version=version,
            )
        )
    default_product = document.get("default_product")
    if default_product is not None and not isinstance(default_product, str):
        raise CommandError("default_product: expected a product key.")
    return CatalogSpec(features=tuple(features), products=tuple(products), default_product=default_product)


class Command(BaseCommand):
    help = "Apply a declarative catalog (features, products, prices) to a project, idempotently."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="The project's slug (or id).")
        parser.add_argument("file", help="The catalog YAML file (see docs/catalog.example.yaml).")
        parser.add_argument("--dry-run", action="store_true", help="Print the plan; change nothing.")
        parser.add_argument(
            "--archive-missing",
            action="store_true",
            help="Deactivate products and prices of the project that the file does not declare.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = (
            Project.objects.filter(slug=options["project"]).first()
            or Project.objects.filter(pk=options["project"]).first()
        )
        if project is None:
            raise CommandError(f"No such project: {options['project']!r}.")
        try:
            document = yaml.safe_load(Path(options["file"]).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise CommandError(f"{options['file']} is not valid YAML: {exc}") from exc
        spec = parse_catalog(document)
        try:
            plan = catalog_plan(project=project, spec=spec, archive_missing=options["archive_missing"])
        except ApiError as exc:
            raise CommandError(exc.message) from exc

        if not plan:
            self.stdout.write(f"{project.slug}: no changes.")
            return
        if options["dry_run"]:
            self.stdout.write(f"{project.slug}: dry run, {len(plan)} change(s) planned; nothing was changed.")
            for change in plan:
                self.stdout.write(f"  {change.line()}")
            return
        applied: list[CatalogChange] = []

        def report(change: CatalogChange) -> None:
            applied.append(change)
            self.stdout.write(f"  {change.line()}")

        try:
            catalog_apply(
                project=project, actor=Actor.system("manage.py sync_catalog"), plan=plan, on_applied=report
            )
        except ApiError as exc:
            raise CommandError(
                f"Stopped at `{plan[len(applied)].line()}`: {exc.message} What was applied before stays "
                "applied; run the command again to complete the rest."
            ) from exc
        self.stdout.write(f"{project.slug}: applied {len(applied)} change(s).")
