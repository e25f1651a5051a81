"""`manage.py stripe_adopt <project> --mapping FILE (--customer-metadata KEY | --customer-field email|id)
[--dry-run]`: adopts the project's existing Stripe account (its own, or the platform's) into the project.

The mapping file has `sync_catalog`'s shape: `features` to create, and `products`, each naming its Stripe product
(`stripe_product`), the key it gets here and the feature values it gives; and `meters`, the metered feature each
Stripe billing meter counts (for the metered prices that bill it). Prints the diff (with `--dry-run`,
what would change; nothing is written locally or at Stripe), the counts by kind and what was left out. Running
it again adopts what is new and changes nothing else. Exits non-zero when the run failed.
"""

from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.services.adoption import adoption_execute, adoption_start
from core.actors import Actor
from core.errors import ApiError
from projects.models import Project


class Command(BaseCommand):
    help = "Adopt an existing Stripe account's customers, catalog, subscriptions and invoices into a project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="The project's slug (or id).")
        parser.add_argument(
            "--mapping", required=True, help="The product mapping (YAML, sync_catalog's shape)."
        )
        key = parser.add_mutually_exclusive_group(required=True)
        key.add_argument(
            "--customer-metadata", help="The Stripe customer metadata key holding the external id."
        )
        key.add_argument(
            "--customer-field",
            choices=["email", "id"],
            help="The Stripe customer field used as the external id.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Print the diff; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        project = (
            Project.objects.filter(slug=options["project"]).first()
            or Project.objects.filter(pk=options["project"]).first()
        )
        if project is None:
            raise CommandError(f"No such project: {options['project']!r}.")
        try:
            mapping = yaml.safe_load(Path(options["mapping"]).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise CommandError(f"Cannot read {options['mapping']}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise CommandError(f"{options['mapping']} is not valid YAML: {exc}") from exc
        customer_key = (
            {"metadata": options["customer_metadata"]}
            if options["customer_metadata"]
            else {"field": options["customer_field"]}
        )
        try:
            run = adoption_start(
                project=project,
                actor=Actor.system("manage.py stripe_adopt"),
                customer_key=customer_key,
                mapping=mapping,
                dry_run=options["dry_run"],
                queue=False,
            )
        except ApiError as exc:
            raise CommandError(exc.message) from exc
        run = adoption_execute(run_id=run.pk)
        report = run.report
        self.stdout.write(
            f"{project.slug}: adoption {run.pk}{' (dry run)' if run.dry_run else ''}, adoption point "
            f"{run.adopted_at.isoformat() if run.adopted_at else '-'} (newest event {run.newest_event_id or '-'})."
        )
        for line in report.get("changes", []):
            self.stdout.write(f"  {line}")
        if report.get("changes_total", 0) > len(report.get("changes", [])):
            self.stdout.write(f"  … {report['changes_total'] - len(report['changes'])} more")
        for kind, counts in report.get("counts", {}).items():
            shown = ", ".join(f"{outcome} {n}" for outcome, n in counts.items())
            self.stdout.write(f"{kind}: {shown}")
        for name in (
            "unmapped_products",
            "mapped_products_not_found",
            "skipped_prices",
            "customers_without_key",
            "customer_conflicts",
            "held_by_another_project",
            "unmapped_subscriptions",
            "subscription_items_not_adopted",
            "subscription_schedules",
        ):
            if report.get(name):
                self.stdout.write(f"{name}: {report[name]}")
        if run.status == run.Status.FAILED:
            raise CommandError(f"Adoption failed: {run.error}")
        adopted = report.get("counts", {}).get("subscriptions", {})
        summary = (
            "dry run: nothing was changed"
            if run.dry_run
            else (
                "nothing to do: everything was adopted already"
                if report.get("nothing_to_do")
                else f"{adopted.get('created', 0)} subscription(s) adopted, {adopted.get('updated', 0)} updated"
            )
        )
        self.stdout.write(
            f"{project.slug}: {summary}; {report['seconds']} s, {report['stripe_reads']} Stripe reads."
        )
