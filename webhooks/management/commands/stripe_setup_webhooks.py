"""`manage.py stripe_setup_webhooks --url <public base URL> [--project <slug>]`.

Registers Tollgate's webhook endpoint at Stripe (or the emulator) at the pinned API version, idempotently —
finds the endpoint for the URL at that version or creates it with the event types Tollgate handles — and stores
the signing secret encrypted for verification (STRIPE_WEBHOOK_SECRET, when set, is accepted for the platform
account too). An endpoint for the URL at another version (or at the account's default) is replaced: the new one
is created and its secret stored first, then the old one is deleted (`webhooks.services.endpoints`).
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ApiError
from projects.models import Project
from webhooks.services.endpoints import webhook_endpoint_register


class Command(BaseCommand):
    help = "Register Tollgate's Stripe webhook endpoint at the pinned API version (idempotent) and store its secret."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", required=True, help="Tollgate's public base URL, e.g. https://billing.example.com"
        )
        parser.add_argument(
            "--project", help="Register at this project's own Stripe account instead of the platform's."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = None
        if options["project"]:
            project = Project.objects.filter(slug=options["project"]).first()
            if project is None:
                raise CommandError(f"No project {options['project']!r}.")
            if not project.stripe_secret_key:
                raise CommandError(
                    f"Project {project.slug!r} uses the platform's Stripe account; run without --project."
                )
        try:
            registered = webhook_endpoint_register(project=project, base_url=options["url"])
        except ApiError as exc:
            raise CommandError(exc.message) from exc
        url, endpoint_id, version = registered.url, registered.endpoint_id, settings.STRIPE_API_VERSION
        if registered.outcome == "created":
            self.stdout.write(
                f"Registered {url} ({endpoint_id}) at API version {version}; signing secret stored encrypted."
            )
        elif registered.outcome == "secret_unknown":
            self.stdout.write(
                self.style.WARNING(
                    f"{url} is already registered ({endpoint_id}) but its signing secret is not stored here; Stripe "
                    "shows it only at creation. Set STRIPE_WEBHOOK_SECRET (or the project's stripe_webhook_secret), or "
                    "delete the endpoint at Stripe and run this again."
                )
            )
        else:
            self.stdout.write(
                f"{url} is already registered ({endpoint_id}) at API version {version}; event types up to date."
            )
        for old_id, old_version in registered.replaced:
            was = f"API version {old_version}" if old_version else "the account's default API version"
            self.stdout.write(
                f"Replaced {old_id} ({was}) by {endpoint_id}: its secret is accepted for a while longer, "
                "and it is deleted at Stripe."
            )
