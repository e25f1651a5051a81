"""Adoption runs, read-only (runs are started from the project page, the `stripe_adopt` command or the platform
API), with their adoption point and report."""

import json

from django.contrib import admin
from django.utils.html import format_html

from billing.models import AdoptionRun
from core.admin_display import ViewOnly, column, status_column
from core.admin_generics import ModelAdmin


@admin.register(AdoptionRun)
class AdoptionRunAdmin(ViewOnly, ModelAdmin[AdoptionRun]):
    list_display = [
        column("id", "ID"),
        "project",
        status_column(),
        column("dry_run", "Dry run", boolean=True),
        column("adopted_at", "Adoption point"),
        column("stripe_reads", "Stripe reads"),
        column("created_at", "Requested"),
        column("finished_at", "Finished"),
    ]
    list_filter = ["status", "dry_run", "project"]
    list_select_related = ["project"]
    readonly_fields = [
        *(field.name for field in AdoptionRun._meta.fields if field.name != "report"),
        "report_shown",
    ]
    exclude = ["report"]

    @admin.display(description="Report")
    def report_shown(self, run: AdoptionRun) -> str:
        return format_html("<pre>{}</pre>", json.dumps(run.report, indent=2, ensure_ascii=False))
