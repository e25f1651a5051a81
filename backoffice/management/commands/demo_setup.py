"""`manage.py demo_setup`: the demo project, its keys and admin login for `make demo`, with working curls.

Idempotent: the project is created once, and a re-run keeps the keys and the admin password. Tollgate stores only
key hashes, so the demo keeps its plaintext secrets in a local, private file (`var/demo-credentials.json`, mode
0600, git-ignored) and reuses them while they still verify; a secret that no longer does (revoked, a new
database) is replaced, and the output says so in capitals. The project's allowed redirect hosts follow
`--base-url` (HOST and PORT of `make demo`), so the printed checkout works on any port.
"""

import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import F
from django.urls import reverse

from backoffice.demo import DEMO_SLUG
from catalog.models import Price
from core.actors import Actor
from core.ids import random_token
from core.money import money_format
from costs.selectors import cost_tables
from costs.services.cost_tables import cost_table_create
from projects.keys import hash_secret
from projects.models import ApiKey, PlatformKey, Project
from projects.services import keys as key_services
from projects.services import projects as services

DEMO_KEY_NAME = "make demo"
# A local demo login; its random password is kept with the keys.
DEMO_ADMIN = "demo-admin"
# The host of the redirect URLs in docs/integration.md's examples, so they run as written against the demo.
DOCS_APP_HOST = "app.example.com"

CATALOG_FILE = Path(settings.BASE_DIR) / "docs" / "catalog.example.yaml"
CREDENTIALS_FILE = Path(settings.DEMO_CREDENTIALS)


# What the demo's AI calls cost it (the `assistant` feature's formula reads it), in micro-dollars per million
# tokens: docs/integration.md, "Pricing AI usage".
DEMO_COST_TABLE = {
    "gpt-4o": {
        "input_tokens": {"micros": 2_500_000, "per": 1_000_000},
        "cached_tokens": {"micros": 1_250_000, "per": 1_000_000},
        "output_tokens": {"micros": 10_000_000, "per": 1_000_000},
    },
    "gpt-4o-mini": {
        "input_tokens": {"micros": 150_000, "per": 1_000_000},
        "cached_tokens": {"micros": 75_000, "per": 1_000_000},
        "output_tokens": {"micros": 600_000, "per": 1_000_000},
    },
}


def _demo_cost_table(project: Project, actor: Actor) -> None:
    """The demo's cost table, version 1, made once (versions are never changed: a re-run keeps it)."""
    if not cost_tables(project=project).exists():
        cost_table_create(project=project, actor=actor, currency="usd", models=DEMO_COST_TABLE)


def redirect_hosts_for(base_url: str) -> list[str]:
    """The demo's allowed redirect hosts: the server's own `host:port` (both loopback names when it is on
    loopback) and the docs' example app."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "127.0.0.1").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    names = ["127.0.0.1", "localhost"] if host in {"127.0.0.1", "localhost"} else [host]
    return [f"{name}:{port}" for name in names] + [DOCS_APP_HOST]


def _read_credentials(path: Path) -> dict[str, Any]:
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def _write_credentials(path: Path, credentials: dict[str, Any]) -> None:
    """Owner-only from the first byte (created 0600, then renamed over the old file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".demo-credentials-")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(credentials, handle, indent=2)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    path.chmod(0o600)


class Command(BaseCommand):
    help = "Create (once) the demo project and print fresh demo keys and a working curl."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--json", action="store_true")
        parser.add_argument(
            "--credentials",
            default=str(CREDENTIALS_FILE),
            help="Where the demo keeps its plaintext keys and admin password between runs (mode 0600).",
        )
        parser.add_argument(
            "--mcp-url",
            default="",
            help="Where the MCP server for agents answers (`make demo` serves it beside): printed with the rest.",
        )
        parser.add_argument(
            "--wait-for-stripe",
            action="store_true",
            help="Wait for the Stripe API (the emulator started beside) and load docs/catalog.example.yaml.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system("make demo")
        base = options["base_url"].rstrip("/")
        credentials_path = Path(options["credentials"])
        stored = _read_credentials(credentials_path)
        rotated: list[str] = []

        project = Project.objects.filter(slug=DEMO_SLUG).first()
        existed = project is not None
        secret = stored.get("api_key", "")
        if project is None:
            project, api_key, secret = services.project_create(
                actor=actor,
                slug=DEMO_SLUG,
                name="Demo project",
                allowed_redirect_hosts=redirect_hosts_for(base),
            )
            with transaction.atomic():
                ApiKey.objects.filter(pk=api_key.pk).update(name=DEMO_KEY_NAME)
        elif not self._project_key_verifies(project, secret):
            for old in ApiKey.objects.filter(project=project, name=DEMO_KEY_NAME, revoked_at__isnull=True):
                key_services.api_key_revoke(
                    actor=actor, api_key=old, reason="replaced by make demo: key not verified"
                )
            _, secret = key_services.api_key_create(actor=actor, project=project, name=DEMO_KEY_NAME)
            rotated.append("project key")
        if project.allowed_redirect_hosts != redirect_hosts_for(base):
            project = services.project_update(
                actor=actor,
                project=project,
                reason=f"make demo serves on {base}",
                allowed_redirect_hosts=redirect_hosts_for(base),
            )

        platform_secret = stored.get("platform_key", "")
        if not self._platform_key_verifies(platform_secret):
            for old_platform in PlatformKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True):
                key_services.platform_key_revoke(actor=actor, platform_key=old_platform, reason="superseded")
            _, platform_secret = key_services.platform_key_create(actor=actor, name=DEMO_KEY_NAME)
            rotated.append("platform key")

        admin_password = stored.get("admin_password", "")
        user = get_user_model().objects.filter(username=DEMO_ADMIN).first() or get_user_model()(
            username=DEMO_ADMIN
        )
        if not (user.pk and admin_password and user.check_password(admin_password)):
            admin_password = random_token(16)
            user.set_password(admin_password)
            rotated.append("admin password")
        user.is_staff = user.is_superuser = True
        user.save()
        if not existed:
            rotated = []  # a first run: nothing was printed before, so nothing changed under anyone
        _write_credentials(
            credentials_path,
            {
                "project": project.pk,
                "api_key": secret,
                "platform_key": platform_secret,
                "admin_username": DEMO_ADMIN,
                "admin_password": admin_password,
            },
        )

        checkout_curl: list[str] = []
        if options["wait_for_stripe"]:
            self._wait_for_stripe()
            call_command("sync_catalog", DEMO_SLUG, str(CATALOG_FILE), stdout=self.stdout)
            _demo_cost_table(project, actor)
            # Stripe (the emulator) posts its events to this server, so a paid checkout shows up at once.
            call_command("stripe_setup_webhooks", "--url", base, stdout=self.stdout)
            checkout_curl = self._checkout_curl(project, base, secret) + self._usage_plan_curl(
                project, base, secret
            )
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "project": project.pk,
                        "api_key": secret,
                        "platform_key": platform_secret,
                        "admin_username": DEMO_ADMIN,
                        "admin_password": admin_password,
                        "allowed_redirect_hosts": project.allowed_redirect_hosts,
                        "rotated": rotated,
                    }
                )
            )
            return
        if rotated:
            notice = [
                "",
                "!" * 78,
                f"!! NEW {', '.join(rotated).upper()}: the previous run's no longer verified (revoked, or a",
                "!! new database). Replace them wherever you copied them; everything else is unchanged.",
                "!" * 78,
            ]
        elif existed:
            notice = ["", f"Keys and admin password as on the last run (kept in {credentials_path})."]
        else:
            notice = []
        mcp = [f"MCP server:     {options['mcp_url']}   (for agents: docs/integration.md, Agents)"]
        self.stdout.write(
            "\n".join(
                [
                    *notice,
                    "",
                    "Tollgate demo",
                    "=============",
                    f"Project:        {project.slug} ({project.pk})",
                    f"Project key:    {secret}",
                    f"Platform key:   {platform_secret}",
                    f"Redirect hosts: {', '.join(project.allowed_redirect_hosts)}",
                    "",
                    f"API docs:       {base}/api/docs/",
                    f"Admin:          {base}/admin/   user {DEMO_ADMIN!r}, password {admin_password!r}",
                    f"Readiness:      {base}/ready",
                    f"Pricing page:   {base}{reverse('demo-pricing')}   (<tollgate-pricing>: click a plan to subscribe)",
                    *(mcp if options["mcp_url"] else []),
                    "",
                    "Try it:",
                    f"  curl -s {base}/api/v1/project -H 'Authorization: Bearer {secret}'",
                    f"  curl -s {base}/api/v1/projects -H 'Authorization: Bearer {platform_secret}'",
                    *checkout_curl,
                    "",
                ]
            )
        )

    @staticmethod
    def _project_key_verifies(project: Project, secret: str) -> bool:
        return (
            bool(secret)
            and ApiKey.objects.filter(
                project=project, key_hash=hash_secret(secret), revoked_at__isnull=True
            ).exists()
        )

    @staticmethod
    def _platform_key_verifies(secret: str) -> bool:
        return (
            bool(secret)
            and PlatformKey.objects.filter(key_hash=hash_secret(secret), revoked_at__isnull=True).exists()
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
        # The demo's landing page; Stripe puts the session's id in the placeholder (in the success URL only).
        landing = f"{base}{reverse('demo-return')}"
        body = json.dumps(
            {
                "customer": "demo-user-1",
                "price": price.key,
                "success_url": f"{landing}?session_id={{CHECKOUT_SESSION_ID}}",
                "cancel_url": f"{landing}?customer=demo-user-1&canceled=1",
            }
        )
        return [
            "",
            # unit_amount__gt=0 above leaves tiered prices (no unit amount) out.
            f"Subscribe a user to {price.key!r} ({money_format(price.unit_amount or 0, price.currency)}"
            f"/{price.interval}):",
            f"  curl -s {base}/api/v1/checkout/subscription -H 'Authorization: Bearer {secret}' \\",
            f"       -H 'Content-Type: application/json' -d '{body}'",
            'Open the "url" it returns and pay with 4242 4242 4242 4242: you land on a page showing the payment, the',
            "subscription and what demo-user-1 may now use. The same through the API:",
            f"  curl -s '{base}/api/v1/payments?customer=demo-user-1' -H 'Authorization: Bearer {secret}'",
        ]

    def _usage_plan_curl(self, project: Project, base: str, secret: str) -> list[str]:
        """A base price with a metered overage on one subscription (checkout `items`), and its usage so far."""
        metered = (
            Price.objects.filter(
                project=project,
                type=Price.Type.RECURRING,
                active=True,
                usage_type=Price.UsageType.METERED,
                meter__isnull=False,
            )
            .select_related("meter")
            .order_by("interval", "key")
        )
        for overage in metered:
            plan = (
                Price.objects.filter(
                    project=project,
                    product=overage.product,
                    type=Price.Type.RECURRING,
                    active=True,
                    usage_type=Price.UsageType.LICENSED,
                    currency=overage.currency,
                    interval=overage.interval,
                    interval_count=overage.interval_count,
                    unit_amount__gt=0,
                )
                .order_by("unit_amount")
                .first()
            )
            if plan is None or overage.meter is None:
                continue
            landing = f"{base}{reverse('demo-return')}"
            body = json.dumps(
                {
                    "customer": "demo-user-2",
                    "items": [{"price": plan.key}, {"price": overage.key}],
                    "success_url": f"{landing}?session_id={{CHECKOUT_SESSION_ID}}",
                    "cancel_url": f"{landing}?customer=demo-user-2&canceled=1",
                }
            )
            feature = overage.meter.key
            return [
                "",
                f"A usage-based plan: {plan.key!r} ({money_format(plan.unit_amount or 0, plan.currency)}"
                f"/{plan.interval}) with the metered {overage.key!r} on one subscription:",
                f"  curl -s {base}/api/v1/checkout/subscription -H 'Authorization: Bearer {secret}' \\",
                f"       -H 'Content-Type: application/json' -d '{body}'",
                f"Once paid, record usage and see what the period will bill ({feature!r}):",
                f"  curl -s {base}/api/v1/usage -H 'Authorization: Bearer {secret}' \\",
                "       -H 'Content-Type: application/json' "
                f"""-d '{{"id": "u-1", "customer": "demo-user-2", "feature": "{feature}", "quantity": 1200}}'""",
                f"  curl -s '{base}/api/v1/usage?customer=demo-user-2&feature={feature}' "
                f"-H 'Authorization: Bearer {secret}'",
            ]
        return []
