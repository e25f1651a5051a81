"""`manage.py create_platform_key [--json]`: an operators' key for `/api/v1/projects*`, printed once."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.actors import Actor
from projects.services import keys as key_services


class Command(BaseCommand):
    help = "Create a platform key (operators' automation) and print it (shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default="")
        parser.add_argument("--json", action="store_true", help="Print one JSON line {id, api_key}.")

    def handle(self, *args: Any, **options: Any) -> None:
        platform_key, secret = key_services.platform_key_create(
            actor=Actor.system("manage.py create_platform_key"), name=options["name"]
        )
        if options["json"]:
            self.stdout.write(json.dumps({"id": platform_key.pk, "api_key": secret}))
        else:
            self.stdout.write(f"Platform key {platform_key.pk} (shown once): {secret}")
