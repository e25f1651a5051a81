"""`manage.py demo_setup`: the demo project and fresh keys for `make demo`, with a working curl.

Idempotent: the project is created once; each run issues new keys (secrets are never stored, so the old ones
cannot be printed again) and revokes the previous run's demo keys.
"""

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import F

from billing.models import Price
from core.actors import Actor
from core.ids import random_token
from projects import services
from projects.models import ApiKey, PlatformKey, Project

DEMO_SLUG = "demo"
DEMO_KEY_NAME = "make demo"
# A local demo login, with a new random password each run (printed below).
DEMO_ADMIN = "demo-admin"


CATALOG_FILE = Path(settings.BASE_DIR) / "docs" / "catalog.example.yaml"


class Command(BaseCommand):
    help = "Create (once) the demo project and print fresh demo keys and a working curl."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--json", action="store_true")
        parser.add_argument(
            "--wait-for-stripe",
            action="store_true",
            help="Wait for the Stripe API (the emulator started beside) and load docs/catalog.example.yaml.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system("make demo")
        project = Project.objects.filter(slug=DEMO_SLUG).first()
        if project is None:
            project, api_key, secret = services.project_create(
                actor=actor,
                slug=DEMO_SLUG,
                name="Demo project",
                allowed_redirect_hosts=["127.0.0.1:8000", "localhost:8000"],
            )
            with transaction.atomic():
                ApiKey.objects.filter(pk=api_key.pk).update(name=DEMO_KEY_NAME)
        else:
            for old in ApiKey.objects.filter(project=project, name=DEMO_KEY_NAME, revoked_at__isnull=True):
                services.api_key_revoke(actor=actor, api_key=old, reason="superseded by a new make demo run")
            _, secret = services.api_key_create(actor=actor, project=project, name=DEMO_KEY_NAME)
        for old_platform in PlatformKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True):
            services.platform_key_revoke(actor=actor, platform_key=old_platform, reason="superseded")
        _, platform_secret = services.platform_key_create(actor=actor, name=DEMO_KEY_NAME)

        admin_password = random_token(16)
        user = get_user_model().objects.filter(username=DEMO_ADMIN).first() or get_user_model()(
            username=DEMO_ADMIN
        )
        user.is_staff = user.is_superuser = True
        user.set_password(admin_password)
        user.save()

        base = options["base_url"].rstrip("/")
        checkout_curl: list[str] = []
        if options["wait_for_stripe"]:
            self._wait_for_stripe()
            call_command("sync_catalog", DEMO_SLUG, str(CATALOG_FILE), stdout=self.stdout)
            # Stripe (the emulator) posts its events to this server, so a paid checkout shows up at once.
            call_command("stripe_setup_webhooks", "--url", base, stdout=self.stdout)
            checkout_curl = self._checkout_curl(project, base, secret)
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "project": project.pk,
                        "api_key": secret,
                        "platform_key": platform_secret,
                        "admin_username": DEMO_ADMIN,
                        "admin_password": admin_password,
                    }
                )
            )
            return
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Tollgate demo",
                    "=============",
                    f"Project:        {project.slug} ({project.pk})",
                    f"Project key:    {secret}",
                    f"Platform key:   {platform_secret}",
                    "",
                    f"API docs:       {base}/api/docs/",
                    f"Admin:          {base}/admin/   user {DEMO_ADMIN!r}, password {admin_password!r}",
                    f"Readiness:      {base}/ready",
                    "",
                    "Try it:",
                    f"  curl -s {base}/api/v1/project -H 'Authorization: Bearer {secret}'",
                    f"  curl -s {base}/api/v1/projects -H 'Authorization: Bearer {platform_secret}'",
                    *checkout_curl,
                    "",
                ]
            )
        )

    def _wait_for_stripe(self, timeout: float = 20.0) -> None:
        base = settings.STRIPE_API_BASE or "https://api.stripe.com"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_emulator/clock", timeout=1):  # noqa: S310 (our own URL)
                    return
            except urllib.error.HTTPError:
                return  # something answers: a real Stripe has no /_emulator route
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise CommandError(
                        f"The Stripe API at {base} did not answer within {timeout:.0f}s."
                    ) from exc
                time.sleep(0.2)

    def _checkout_curl(self, project: Project, base: str, secret: str) -> list[str]:
        price = (
            Price.objects.filter(project=project, type=Price.Type.RECURRING, active=True, unit_amount__gt=0)
            .exclude(usage_type=Price.UsageType.METERED)
            # A price without a trial first: the demo shows a paid subscription (a trial pays nothing now).
            .order_by(F("trial_days").asc(nulls_first=True), "unit_amount")
            .first()
        )
        if price is None:
            return []
        body = json.dumps(
            {
                "customer": "demo-user-1",
                "price": price.key,
                "success_url": f"{base}/health?paid=1",
                "cancel_url": f"{base}/health?canceled=1",
            }
        )
        return [
            "",
            f"Subscribe a user to {price.key!r} ({price.unit_amount / 100:.2f} {price.currency.upper()}/{price.interval}):",
            f"  curl -s {base}/api/v1/checkout/subscription -H 'Authorization: Bearer {secret}' \\",
            f"       -H 'Content-Type: application/json' -d '{body}'",
            'Open the "url" it returns and pay with 4242 4242 4242 4242; then:',
            f"  curl -s '{base}/api/v1/payments?customer=demo-user-1' -H 'Authorization: Bearer {secret}'",
        ]
