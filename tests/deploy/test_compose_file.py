"""docker-compose.yml's safety rules, read from the file (no Docker): what an operator gets from `docker compose up`
with nothing but the secrets in `.env`.

.ci/compose-check runs the file under Docker; tests/deploy/test_compose_sequence.py runs its start-up sequence as
local processes. These rules are the ones a running stack would not show: the Stripe emulator (any key accepted,
any card paid) exists only in the `demo` profile and only this host reaches it; every credential comes from `.env`;
every service has a healthcheck; the app image is built once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.test_compose_sequence import COMPOSE_FILE, WORKERS, interpolate, stop_grace_seconds

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, Any] = DOCUMENT["services"]
# Environment names that carry a credential, and URLs that may carry one in their user part.
CREDENTIAL = re.compile(r"PASSWORD|SECRET|TOKEN|_KEYS?$")
URL = re.compile(r"_URL$")
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\}")
# Only the TLS proxy may listen beyond this host by default: it is the way in from other hosts.
PUBLIC_BY_DEFAULT = {"tls-proxy"}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in (service.get("environment") or {}).items()}


def _defaults_only(value: Any) -> Any:
    """The file as compose reads it with an empty `.env` (`:?` variables given a placeholder)."""
    required = {
        m.group("name"): "REQUIRED" for m in _INTERPOLATION.finditer(str(value)) if m.group("op") == ":?"
    }
    return interpolate(value, required)


def test_the_emulator_runs_only_in_the_demo_profile() -> None:
    emulators = [
        name
        for name, s in SERVICES.items()
        if "stripe_emulator" in " ".join(map(str, s.get("command") or []))
    ]
    assert emulators == ["stripe-emulator"]
    assert SERVICES["stripe-emulator"]["profiles"] == ["demo"]
    # Nothing outside the profile needs it: `docker compose up` without `--profile demo` starts.
    for name, service in SERVICES.items():
        assert "stripe-emulator" not in (service.get("depends_on") or {}), name
    # Its in-network address is web's default Stripe: without the profile web says what to set, and gives up.
    web = _defaults_only(_environment(SERVICES["web"]))
    assert web["STRIPE_API_BASE"] == "http://stripe-emulator:12111"
    assert (
        "No Stripe at $$STRIPE_API_BASE: the emulator needs the demo profile" in SERVICES["web"]["command"][2]
    )


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_published_ports_name_their_address_and_default_to_this_host(name: str) -> None:
    for mapping in _defaults_only(SERVICES[name].get("ports") or []):
        address, host_port, container_port = str(mapping).split(":")
        assert host_port.isdigit(), mapping
        assert container_port.isdigit(), mapping
        if name not in PUBLIC_BY_DEFAULT:
            assert address == "127.0.0.1", f"{name} publishes {mapping}"
    # The emulator's address is not even a variable: it takes any key and pays any card.
    if name == "stripe-emulator":
        assert all(str(m).startswith("127.0.0.1:") for m in SERVICES[name]["ports"])
    if name in ("postgres", "redis"):
        assert not SERVICES[name].get("ports"), f"{name} is reachable from the compose network only"


def test_no_credential_is_written_in_the_file() -> None:
    checked = 0
    for name, service in SERVICES.items():
        for key, value in _environment(service).items():
            for match in _INTERPOLATION.finditer(value):
                if CREDENTIAL.search(match.group("name")) and match.group("op") in (":-", "-"):
                    assert not match.group("default"), f"{name}.{key}: a default for {match.group(0)}"
            if CREDENTIAL.search(key):
                checked += 1
                assert _INTERPOLATION.sub("", value) == "", f"{name}.{key} holds a literal: {value!r}"
            if URL.search(key):
                password = urlsplit(_INTERPOLATION.sub("INTERPOLATED", value)).password
                assert password in (None, "INTERPOLATED"), f"{name}.{key} holds a literal password"
    assert checked >= 8
    # PostgreSQL's password is required from .env (compose refuses to start without it), the same in both places.
    password = "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}"
    assert SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"] == password
    assert f":{password}@postgres:5432/" in SERVICES["web"]["environment"]["DATABASE_URL"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_healthcheck(name: str) -> None:
    healthcheck = SERVICES[name].get("healthcheck") or {}
    assert healthcheck.get("test"), name
    assert not healthcheck.get("disable"), name


def test_worker_and_beat_are_healthy_by_their_heartbeat() -> None:
    for name in (*WORKERS, "beat"):
        service = SERVICES[name]
        assert _environment(service)["HEARTBEAT_FILE"] == "/app/var/heartbeat"
        assert "$$HEARTBEAT_FILE" in service["healthcheck"]["test"][1]
        # A heartbeat left by the container's previous run does not count.
        assert service["command"][2].startswith('rm -f "$$HEARTBEAT_FILE"'), name


def test_every_service_of_the_app_image_can_build_it() -> None:
    """`docker-compose up -d --build` on a host without the image: compose 1.x goes through the services in the
    file's order and pulls the image of one that has no `build:` (the emulator, before web) instead of building
    it, which fails without a registry (and with one fetches someone else's `tollgate`). So every service that
    runs the app image has the same `build:`, and nothing else builds."""
    image = SERVICES["web"]["image"]
    assert image == "${TOLLGATE_IMAGE:-tollgate:latest}"
    app = {name for name, s in SERVICES.items() if s.get("image") == image}
    assert app == {"web", *WORKERS, "beat", "stripe-emulator", "mcp"}
    build = SERVICES["web"]["build"]
    assert build == {"context": ".", "args": {"BASE_IMAGE": "${BASE_IMAGE:-python:3.11-slim}"}}
    assert {name: s["build"] for name, s in SERVICES.items() if "build" in s} == dict.fromkeys(app, build)
    # The base image is a build argument: the official python:3.11-slim unless the operator names another.
    assert "ARG BASE_IMAGE=python:3.11-slim" in (ROOT / "Dockerfile").read_text()


def test_the_documented_start_is_one_command_that_builds() -> None:
    """The docs start the stack with one command that builds what is missing (compose v2 and Debian's 1.29), and
    .ci/compose-check runs that command first, on a daemon without the app image."""
    for doc in ("README.md", "docs/operations.md"):
        text = (ROOT / doc).read_text()
        assert "docker compose up -d --build --wait" in text, doc
        assert "docker-compose up -d --build" in text, doc
        assert "docker compose build" not in text, doc
    check = (ROOT / ".ci/compose-check").read_text()
    assert 'docker image rm -f "$TOLLGATE_IMAGE"' in check
    assert "compose up -d --build" in check


def test_official_images_by_default_stand_ins_by_name() -> None:
    assert SERVICES["postgres"]["image"] == "${POSTGRES_IMAGE:-postgres:15}"
    assert SERVICES["redis"]["image"] == "${REDIS_IMAGE:-redis:7}"
    assert SERVICES["tls-proxy"]["image"] == "${CADDY_IMAGE:-caddy:2}"
    assert SERVICES["tls-proxy"]["profiles"] == ["tls"]
    for name in ("postgres", "redis", "caddy"):
        assert (ROOT / "docker" / name / "Dockerfile").exists(), name


def test_env_example_names_every_variable_the_file_requires() -> None:
    required = {
        m.group("name") for m in _INTERPOLATION.finditer(COMPOSE_FILE.read_text()) if m.group("op") == ":?"
    }
    example = (ROOT / ".env.example").read_text()
    assert required == {"POSTGRES_PASSWORD"}
    for name in required | {"SECRET_KEY", "FIELD_ENCRYPTION_KEYS"}:
        assert re.search(rf"^{name}=$", example, re.M), f".env.example lacks an empty {name}= to fill"


def test_web_is_not_declared_unhealthy_while_its_first_start_migrates() -> None:
    """compose 1.x gives up on the services that wait for web (the TLS proxy) as soon as web is unhealthy; a first
    start applies every migration, minutes on a small or busy host (.ci/compose-check saw web unhealthy after
    60 s + 10 × 10 s while it still migrated). The start period covers it; a healthy answer counts at once."""
    healthcheck = SERVICES["web"]["healthcheck"]
    assert (healthcheck["start_period"], healthcheck["interval"], healthcheck["retries"]) == (
        "300s",
        "10s",
        10,
    )
    assert SERVICES["tls-proxy"]["depends_on"] == {"web": {"condition": "service_healthy"}}


def test_each_queue_has_a_worker_and_only_one() -> None:
    """Every Celery queue (config.settings.base.TASK_QUEUES) is consumed by exactly one worker service, named by
    `-Q`; the CPU-bound one (Stripe's events) keeps Celery's default pool of one process per CPU."""
    from django.conf import settings

    consumed: dict[str, str] = {}
    for name in WORKERS:
        argv = SERVICES[name]["command"][2].split()
        queues = argv[argv.index("-Q") + 1].split(",")
        for queue in queues:
            assert queue not in consumed, (queue, name, consumed.get(queue))
            consumed[queue] = name
        if "stripe-events" in queues:
            assert "--concurrency" not in argv
        assert stop_grace_seconds(SERVICES[name]) == 330
    assert sorted(consumed) == sorted(settings.TASK_QUEUES)


def test_the_mcp_server_starts_once_web_migrated_and_the_proxy_routes_mcp_to_it() -> None:
    """`mcp` serves config.mcp with uvicorn once web is healthy (migrated); a request in flight on SIGTERM gets as
    long as one of web's (a money move may wait on Stripe), and Docker waits longer; the `tls` profile's proxy sends
    /mcp to it and everything else to web."""
    from django.conf import settings

    mcp = SERVICES["mcp"]
    assert mcp["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "web": {"condition": "service_healthy"},
    }
    argv = [str(part) for part in mcp["command"]]
    assert argv[:2] == ["uvicorn", "config.mcp:app"]
    assert argv[argv.index("--port") + 1] == "8001"
    assert "8001/live" in mcp["healthcheck"]["test"][-1]
    graceful = int(argv[argv.index("--timeout-graceful-shutdown") + 1])
    stripe_call = settings.STRIPE_TIMEOUT_SECONDS * (1 + settings.STRIPE_MAX_NETWORK_RETRIES)
    assert stop_grace_seconds(mcp) > graceful > stripe_call
    caddyfile = (ROOT / "docker" / "caddy" / "Caddyfile").read_text()
    assert re.search(r"@mcp path /mcp /mcp/\*\n\s*handle @mcp \{\n\s*reverse_proxy mcp:8001\n", caddyfile)
    assert re.search(r"handle \{\n\s*reverse_proxy web:8000\n", caddyfile)
