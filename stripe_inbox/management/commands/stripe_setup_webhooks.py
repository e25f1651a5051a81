"""`manage.py stripe_setup_webhooks --url <public base URL> [--project <slug>]`.

Registers Tollgate's webhook endpoint at Stripe (or the emulator) idempotently — finds the endpoint for the
URL or creates it with the event types Tollgate handles — and stores the signing secret encrypted for
verification (unless STRIPE_WEBHOOK_SECRET is set for the platform account).
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.handlers.registry import HANDLERS
from core.errors import ApiError
from projects.models import Project
from stripe_gateway.gateway import PLATFORM_ACCOUNT, gateway_for, platform_gateway, webhook_endpoint_ensure
from stripe_inbox.models import StripeWebhookEndpoint


class Command(BaseCommand):
    help = "Register Tollgate's Stripe webhook endpoint (idempotent) and store its signing secret."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", required=True, help="Tollgate's public base URL, e.g. https://billing.example.com"
        )
        parser.add_argument(
            "--project", help="Register at this project's own Stripe account instead of the platform's."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        base = options["url"].rstrip("/")
        project = None
        if options["project"]:
            project = Project.objects.filter(slug=options["project"]).first()
            if project is None:
                raise CommandError(f"No project {options['project']!r}.")
            if not project.stripe_secret_key:
                raise CommandError(
                    f"Project {project.slug!r} uses the platform's Stripe account; run without --project."
                )
        account = project.pk if project else PLATFORM_ACCOUNT
        url = f"{base}/webhooks/stripe/{project.pk}" if project else f"{base}/webhooks/stripe"
        gateway = gateway_for(project) if project else platform_gateway()
        try:
            endpoint, created = webhook_endpoint_ensure(
                gateway, url=url, events=sorted(HANDLERS), description=f"Tollgate ({account})"
            )
        except ApiError as exc:
            raise CommandError(exc.message) from exc
        stored = StripeWebhookEndpoint.objects.filter(account=account).first()
        if created:
            StripeWebhookEndpoint.objects.update_or_create(
                account=account,
                defaults={
                    "project": project,
                    "stripe_endpoint_id": endpoint["id"],
                    "url": url,
                    "secret": endpoint.get("secret") or "",
                },
            )
            self.stdout.write(f"Registered {url} ({endpoint['id']}); signing secret stored encrypted.")
        elif stored is None or stored.stripe_endpoint_id != endpoint["id"]:
            self.stdout.write(
                self.style.WARNING(
                    f"{url} is already registered ({endpoint['id']}) but its signing secret is not stored here; Stripe "
                    "shows it only at creation. Set STRIPE_WEBHOOK_SECRET (or the project's stripe_webhook_secret), or "
                    "delete the endpoint at Stripe and run this again."
                )
            )
        else:
            self.stdout.write(f"{url} is already registered ({endpoint['id']}); event types up to date.")
