"""`manage.py replay_webhooks [--status failed] [--since ISO] [--type T] [--project slug] [--fetch-missing]`."""

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from projects.models import Project
from webhooks.models import StripeEvent
from webhooks.selectors import stripe_events_of_project
from webhooks.services.replay import stripe_event_replay, stripe_events_fetch_missing


class Command(BaseCommand):
    help = "Run stored Stripe events through the handlers again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--status", default="failed", choices=[s.value for s in StripeEvent.Status] + ["any"]
        )
        parser.add_argument("--since", help="ISO 8601 time; only events received since then.")
        parser.add_argument("--type", dest="event_type")
        parser.add_argument(
            "--project",
            help="Project slug: the events of its own Stripe account, or of the platform's that are about it (named in "
            "their object's metadata, or about one of its customers).",
        )
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument(
            "--fetch-missing",
            action="store_true",
            help="First fetch the account's events since --since from Stripe and store those never received.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first() if options["project"] else None
        if options["project"] and project is None:
            raise CommandError(f"No project {options['project']!r}.")
        events = StripeEvent.objects.order_by("stripe_created", "received_at")
        if options["status"] != "any":
            events = events.filter(status=options["status"])
        since = None
        if options["since"]:
            try:
                since = datetime.fromisoformat(options["since"])
            except ValueError as exc:
                raise CommandError("--since must be an ISO 8601 time.") from exc
            if timezone.is_naive(since):
                since = timezone.make_aware(since, UTC)
            events = events.filter(received_at__gte=since)
        if options["fetch_missing"]:
            if since is None:
                raise CommandError("--fetch-missing needs --since.")
            account_project = project if project is not None and project.stripe_secret_key else None
            fetched = stripe_events_fetch_missing(project=account_project, since=since)
            owner = f"project {account_project.slug}'s" if account_project else "the platform's"
            self.stdout.write(
                f"Stripe listed {fetched.listed} event(s) of {owner} account since {since.isoformat()}: "
                f"{fetched.already} received before; {fetched.handled} missing of types Tollgate handles, stored and queued to be applied; "
                f"{fetched.unhandled} missing of types it does not handle, stored as ignored (nothing applied)."
            )
        if options["event_type"]:
            events = events.filter(type=options["event_type"])
        if project is not None:
            events = stripe_events_of_project(project=project, events=events)
        count = 0
        for event in events.iterator():
            count += 1
            if options["dry_run"]:
                self.stdout.write(f"would replay {event.stripe_event_id} {event.type} ({event.status})")
            else:
                stripe_event_replay(event=event)
        self.stdout.write(f"{'Would replay' if options['dry_run'] else 'Replayed'} {count} event(s).")
