"""`manage.py create_project <slug> --name <name> [--json]`: a project and its first key, printed once."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.actors import Actor
from core.errors import ApiError
from projects.services import projects as services


class Command(BaseCommand):
    help = "Create a tenant project and print its first API key (shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--currency", default="usd")
        parser.add_argument("--redirect-host", action="append", default=[], dest="redirect_hosts")
        parser.add_argument("--json", action="store_true", help="Print one JSON line {id, slug, api_key}.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            project, _, secret = services.project_create(
                actor=Actor.system("manage.py create_project"),
                slug=options["slug"],
                name=options["name"],
                default_currency=options["currency"],
                allowed_redirect_hosts=options["redirect_hosts"],
            )
        except ApiError as exc:
            raise CommandError(exc.message) from exc
        if options["json"]:
            self.stdout.write(json.dumps({"id": project.pk, "slug": project.slug, "api_key": secret}))
        else:
            self.stdout.write(f"Created project {project.slug} ({project.pk}).")
            self.stdout.write(f"API key (shown once): {secret}")
