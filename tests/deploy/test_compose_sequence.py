"""docker-compose.yml's start-up sequence, run without Docker.

The test reads docker-compose.yml and runs each service of `docker compose --profile demo up` with its own
command (web's migrate_locked, endpoint registration and gunicorn; the worker; beat; the Stripe emulator) as
local processes, with the environment compose would give them: the file's variables interpolated from an `.env`
the test fills (the secrets, the demo's Stripe key, the ports), service hostnames replaced by 127.0.0.1 on free
ports, PostgreSQL and Redis replaced by a database and Redis databases of this test, volumes by temporary
directories. Services start in the order depends_on gives, each dependency waited for as its condition says
(healthchecks are the file's own commands). PostgreSQL and Redis are the machine's, already healthy. The image's
build step (collectstatic) runs first.

It proves what the compose file promises: worker and beat wait while migrations are unapplied; the webhook
endpoint is registered once (a second start-up of every service, emulator state reloaded from its volume, changes
nothing); a checkout completed in the emulator reaches web as a signed event and the worker processes it; the
Checkout URL is the emulator's public URL; static files are served; `web` is an allowed host; beat schedules; the MCP
server starts once web is healthy and answers an agent key made through web's API (and 401 without one).
.ci/compose-check runs the same file under Docker (in CI always); tests/deploy/test_compose_file.py holds the file
to its safety rules.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings

from tests.redis_databases import flush
from tests.webhooks.workers import broker_url, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
# The Dockerfile's WORKDIR: paths under it in commands are the checkout here, except var/ (kept out of the tree).
WORKDIR = "/app"
# Services this test does not start: the machine's PostgreSQL and Redis stand in for them.
EXTERNAL = {"postgres", "redis"}
# `docker compose --profile demo up`: the Stripe emulator's profile (the `tls` proxy stays out).
PROFILES = {"demo"}
# The worker services, one per Celery queue (docs/operations.md, "Queues and workers").
WORKERS = ("worker", "worker-events", "worker-deliveries")
CARD_OK = "4242424242424242"

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: Any, variables: Mapping[str, str]) -> Any:
    """Compose's variable interpolation: `${NAME}`, `${NAME:-default}` (unset or empty), `${NAME-default}`
    (unset), `$NAME`, and `$$` for a literal `$`; applied to every string of the file."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, default = match.group(2), match.group(3) or ""
        current = variables.get(name)
        if operator == ":-":
            return current if current else default
        if operator == "-":
            return current if current is not None else default
        if operator in (":?", "?") and not current:
            raise AssertionError(f"compose requires {name}: {default}")
        return current or ""

    return _VARIABLE.sub(one, value)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}


def stop_grace_seconds(service: Mapping[str, Any]) -> float:
    """How long compose waits after SIGTERM before SIGKILL: the service's `stop_grace_period` (compose's duration
    format: `100s`, `1m30s`, `500ms`), 10 s when unset."""
    duration = str(service.get("stop_grace_period", "10s"))
    parts = _DURATION.findall(duration)
    assert parts, duration
    assert "".join(value + unit for value, unit in parts) == duration, duration
    return sum(float(value) * _UNIT_SECONDS[unit] for value, unit in parts)


def start_order(services: Mapping[str, Any]) -> list[list[str]]:
    """The services in stages: each one's depends_on all in earlier stages (what `docker compose up` waits for)."""
    remaining = dict(services)
    stages: list[list[str]] = []
    done: set[str] = set()
    while remaining:
        stage = sorted(
            name for name, service in remaining.items() if set(service.get("depends_on") or {}) <= done
        )
        assert stage, f"depends_on has a cycle among {sorted(remaining)}"
        stages.append(stage)
        done.update(stage)
        for name in stage:
            del remaining[name]
    return stages


class Stack:
    """The compose file's services as local process groups, with their logs in a temporary directory."""

    def __init__(self, *, variables: dict[str, str], database_url: str, redis_url: str, broker: str) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="tollgate-compose-"))
        (self.work / "var").mkdir()
        self.variables = variables
        document = yaml.safe_load(COMPOSE_FILE.read_text())
        self.services: dict[str, Any] = {
            name: service
            for name, service in interpolate(document["services"], variables).items()
            if not service.get("profiles") or PROFILES & set(service["profiles"])
        }
        # Published ports: a service's container port is reached at 127.0.0.1:<host port>, by name or not.
        self.ports: dict[tuple[str, str], str] = {}
        for name, service in self.services.items():
            for mapping in service.get("ports") or []:
                host_port, container_port = str(mapping).rsplit(":", 1)
                self.ports[(name, container_port)] = host_port.rsplit(":", 1)[-1]
        for name in document.get("volumes") or {}:
            (self.work / name).mkdir()
        # The compose network's PostgreSQL and Redis are this test's database and Redis databases.
        self.replaced = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "CELERY_BROKER_URL": broker}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.started: list[str] = []

    # --- what compose would run ----------------------------------------------------------------------------
    def _local(self, name: str, text: str) -> str:
        for (service, container_port), host_port in self.ports.items():
            text = text.replace(f"{service}:{container_port}", f"127.0.0.1:{host_port}")
            if service == name:
                # The service's own bind address and port, and its healthcheck's loopback URL.
                text = text.replace(f"0.0.0.0:{container_port}", f"127.0.0.1:{host_port}")
                text = text.replace(f"127.0.0.1:{container_port}/", f"127.0.0.1:{host_port}/")
        for mount in self.services[name].get("volumes") or []:
            volume, target = mount.split(":")[:2]
            text = text.replace(f"{target}/", f"{self.work / volume}/")
        return text.replace(f"{WORKDIR}/var/", f"{self.work / 'var'}/")

    def command(self, name: str) -> list[str]:
        service = self.services[name]
        command = service["command"]
        argv = [
            self._local(name, part) for part in (command if isinstance(command, list) else command.split())
        ]
        if argv[:1] != ["sh"]:
            for flag, value in (("--host", "127.0.0.1"), ("--port", None)):
                if flag in argv:
                    at = argv.index(flag) + 1
                    argv[at] = value or self.ports[(name, argv[at])]
        return argv

    def environment(self, name: str) -> dict[str, str]:
        env = {key: str(value) for key, value in (self.services[name].get("environment") or {}).items()}
        env = {key: self._local(name, value) for key, value in env.items()}
        env.update({key: value for key, value in self.replaced.items() if key in env})
        return {
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.work),
            "LANG": "C.UTF-8",
            # The Dockerfile's ENV, and STATIC_ROOT where its collectstatic wrote (the image's var/static).
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "STATIC_ROOT": str(self.work / "var" / "static"),
            **env,
        }

    def log(self, name: str) -> Path:
        return self.work / f"{name}.log"

    def output(self, name: str) -> str:
        path = self.log(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"----- {name} -----\n{self.output(name)[-4000:]}" for name in self.started)

    # --- docker compose build / up / exec / stop ------------------------------------------------------------
    def build(self) -> None:
        """The Dockerfile's build steps that matter at run time: collectstatic into the image's STATIC_ROOT, and
        var/prometheus (web's PROMETHEUS_MULTIPROC_DIR) made."""
        (self.work / "var" / "prometheus").mkdir()
        collected = self.run("web", ["python", "manage.py", "collectstatic", "--noinput", "-v0"], timeout=120)
        assert collected.returncode == 0, collected.stderr

    def run(self, name: str, argv: list[str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`docker compose exec <name> argv…` (or `run --rm`): a one-off command in the service's environment."""
        return subprocess.run(
            argv, cwd=ROOT, env=self.environment(name), capture_output=True, text=True, timeout=timeout
        )

    def start(self, name: str) -> None:
        with self.log(name).open("ab") as log:
            self.processes[name] = subprocess.Popen(
                self.command(name),
                cwd=ROOT,
                env=self.environment(name),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() takes gunicorn's and celery's children
            )
        if name not in self.started:
            self.started.append(name)

    def healthy(self, name: str) -> bool:
        """The service's own healthcheck command, run once (a service without one is healthy once running)."""
        self.assert_running(name)
        test = (self.services[name].get("healthcheck") or {}).get("test")
        if not test:
            return True
        argv = ["sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
        argv = [self._local(name, part) for part in argv]
        try:
            return self.run(name, argv, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def wait_healthy(self, name: str, timeout: float = 90) -> None:
        if not wait_for(lambda: self.healthy(name), timeout=timeout, interval=0.3):
            raise AssertionError(f"{name} not healthy after {timeout} s\n{self.logs()}")

    def assert_running(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            raise AssertionError(f"{name} exited with {process.returncode}\n{self.logs()}")

    def up(self, *, before_web: Any = None) -> None:
        """`docker compose up`: stage by stage; a dependency with `condition: service_healthy` is waited for."""
        for stage in start_order(self.services):
            # Within a stage compose promises no order; web last lets the test see worker and beat wait first.
            for name in sorted(stage, key=lambda n: n == "web"):
                if name in EXTERNAL:
                    continue
                for dependency, rule in (self.services[name].get("depends_on") or {}).items():
                    if dependency not in EXTERNAL and (rule or {}).get("condition") == "service_healthy":
                        # As long as web's start_period: its first start migrates everything.
                        self.wait_healthy(dependency, timeout=300)
                if name == "web" and before_web is not None:
                    before_web()
                self.start(name)

    def stop(self, name: str) -> None:
        """`docker compose stop`: SIGTERM to the process group, SIGKILL after the service's stop_grace_period."""
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=stop_grace_seconds(self.services[name]))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def down(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)


def http(
    url: str, *, data: dict[str, Any] | None = None, form: str | None = None, headers: Mapping[str, str] = {}
) -> tuple[int, bytes]:
    body = json.dumps(data).encode() if data is not None else form.encode() if form is not None else None
    kind = {"Content-Type": "application/json"} if data is not None else {}
    if form is not None:
        kind = {"Content-Type": "application/x-www-form-urlencoded"}
    request = urllib.request.Request(url, data=body, headers={**kind, **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def compose_database() -> Iterator[str]:
    """A database of this test (the test database's name + `_compose`), created empty and dropped after."""
    import psycopg

    default = settings.DATABASES["default"]
    name = f"test_{default['NAME'].removeprefix('test_')}_compose"
    server = f"postgres://{default['USER']}@{default['HOST'] or '127.0.0.1'}:{default['PORT'] or 5432}"

    def admin(sql: str) -> None:
        with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)

    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def stack(compose_database: str) -> Iterator[Stack]:
    redis_url = os.environ.get("REDIS_URL", "")
    broker = broker_url()  # skips without REDIS_URL and TOLLGATE_TEST_BROKER_URL
    web_port, emulator_port, mcp_port = free_port(), free_port(), free_port()
    while len({web_port, emulator_port, mcp_port}) < 3:
        emulator_port, mcp_port = free_port(), free_port()
    # The `.env` an operator fills for the demo (.env.example): the secrets and the emulator's key; ports moved off
    # 8000/12111 so parallel runs never collide.
    variables = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "STRIPE_SECRET_KEY": "sk_test_tollgate_compose",
        "WEB_CONCURRENCY": "2",
        "WEB_PORT": str(web_port),
        "STRIPE_EMULATOR_PORT": str(emulator_port),
        "STRIPE_EMULATOR_PUBLIC_URL": f"http://localhost:{emulator_port}",
        "MCP_PORT": str(mcp_port),
    }
    for url in (redis_url, broker):
        flush(url)
    running = Stack(variables=variables, database_url=compose_database, redis_url=redis_url, broker=broker)
    try:
        yield running
    finally:
        running.down()
        for url in (redis_url, broker):
            flush(url)
        if not os.environ.get("TOLLGATE_KEEP_COMPOSE_LOGS"):
            subprocess.run(["rm", "-rf", str(running.work)], check=False)


def _webhook_endpoints(stack: Stack) -> list[dict[str, Any]]:
    import stripe

    env = stack.environment("web")
    client = stripe.StripeClient(env["STRIPE_SECRET_KEY"], base_addresses={"api": env["STRIPE_API_BASE"]})
    return [
        endpoint.to_dict() for endpoint in client.v1.webhook_endpoints.list({"limit": 100}).auto_paging_iter()
    ]


def _pay_and_complete(stack: Stack, web: str, api_key: str, reference: str) -> None:
    """A checkout created through web, paid in the emulator's hosted page, seen `succeeded` through web."""
    auth = {"Authorization": f"Bearer {api_key}"}
    status, body = http(
        f"{web}/api/v1/payments",
        data={
            "customer": "buyer-1",
            "amount": 1500,
            "currency": "usd",
            "description": "Compose check",
            "flow": "checkout",
            "reference": reference,
            "success_url": "https://shop.example/ok",
            "cancel_url": "https://shop.example/cart",
        },
        headers=auth,
    )
    assert status == 201, body
    payment = json.loads(body)
    assert (payment["status"], payment["amount"], payment["currency"]) == ("pending", 1500, "usd")
    # The browser's URL is the emulator's public URL (the host's localhost), not the address web called.
    public = stack.variables["STRIPE_EMULATOR_PUBLIC_URL"]
    match = re.fullmatch(re.escape(public) + r"/checkout/pay/(cs_\w+)", payment["checkout_url"])
    assert match, payment["checkout_url"]
    status, page = http(payment["checkout_url"])
    assert status == 200
    assert b"<form" in page
    emulator = stack.environment("web")["STRIPE_API_BASE"]
    status, body = http(
        f"{emulator}/_emulator/checkout/sessions/{match.group(1)}/complete", form=f"card={CARD_OK}"
    )
    assert status == 200, body

    def paid() -> bool:
        status, body = http(f"{web}/api/v1/payments/{payment['id']}", headers=auth)
        assert status == 200, body
        return bool(json.loads(body)["status"] == "succeeded")

    assert wait_for(paid, timeout=60, interval=0.3), stack.logs()


def _mcp_answers_an_agent_key(stack: Stack, web: str, api_key: str) -> None:
    """The MCP server (healthy once web is): no key, 401; an agent key made through web's API lists its tools."""
    stack.wait_healthy("mcp")
    mcp = f"http://127.0.0.1:{stack.variables['MCP_PORT']}/mcp"
    status, body = http(
        f"{web}/api/v1/agent_keys", data={"name": "compose"}, headers={"Authorization": f"Bearer {api_key}"}
    )
    assert status == 201, body
    agent_key = json.loads(body)["agent_key"]
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    assert http(mcp, data=listing, headers=accept)[0] == 401
    status, body = http(mcp, data=listing, headers={**accept, "Authorization": f"Bearer {agent_key}"})
    assert status == 200, body
    assert "customer_lookup" in [tool["name"] for tool in json.loads(body)["result"]["tools"]]


def _stripe_events(database_url: str) -> dict[str, str]:
    """Stored Stripe events: type → status (each type comes once per checkout here)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT type, status FROM webhooks_stripeevent ORDER BY id").fetchall()
    return {str(kind): str(status) for kind, status in rows}


@pytest.mark.postgres
def test_compose_start_up_sequence_runs_without_docker(stack: Stack) -> None:
    from django.db.migrations.loader import MigrationLoader

    database_url = stack.replaced["DATABASE_URL"]
    unapplied = len(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    # Compose starts the emulator with PostgreSQL and Redis; web, worker and beat together once those are healthy
    # (web also waits for the emulator's health); the MCP server once web is healthy (migrated).
    assert start_order(stack.services) == [
        ["postgres", "redis", "stripe-emulator"],
        ["beat", "web", "worker", "worker-deliveries", "worker-events"],
        ["mcp"],
    ]
    stack.build()

    # Nothing is migrated yet (every migration on disk is unapplied): the waiting command gives up after its
    # timeout, and says why.
    gave_up = stack.run("worker", ["python", "manage.py", "wait_for_migrations", "--timeout", "1"])
    assert gave_up.returncode == 1
    assert (
        f"Gave up after 1 s: {unapplied} unapplied migration(s), the first contenttypes.0001_initial."
        in gave_up.stderr
    )

    def waiting() -> None:
        """Before web starts (and migrates): the workers and beat are up, waiting, and have started nothing."""
        for name in (*WORKERS, "beat"):
            assert wait_for(
                lambda n=name: f"Waiting for migrations: {unapplied} unapplied" in stack.output(n), timeout=60
            ), stack.logs()
            stack.assert_running(name)
            assert "Migrations are applied." not in stack.output(name)
        for name in WORKERS:
            assert f"@{socket.gethostname()}" not in stack.output(name)  # no Celery banner (its node name)
        assert "beat: Starting" not in stack.output("beat")

    stack.up(before_web=waiting)
    # As long as compose's healthcheck gives web to start (start_period: the first start migrates everything while
    # the workers and beat wait; minutes on a busy host).
    stack.wait_healthy("web", timeout=300)
    for name in (*WORKERS, "beat"):
        assert wait_for(lambda n=name: "Migrations are applied." in stack.output(n), timeout=30), stack.logs()
        stack.assert_running(name)

    web = f"http://127.0.0.1:{stack.variables['WEB_PORT']}"
    endpoints = _webhook_endpoints(stack)
    assert [(e["url"], e["status"]) for e in endpoints] == [(f"{web}/webhooks/stripe", "enabled")]
    assert f"Registered {web}/webhooks/stripe ({endpoints[0]['id']})" in stack.output("web")

    # Static files (collected at build, served by WhiteNoise in gunicorn).
    status, css = http(f"{web}/static/admin/css/base.css")
    assert status == 200
    assert b"body" in css
    status, docs = http(f"{web}/api/docs/")
    assert status == 200
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', docs.decode())
    assert len(assets) >= 2, docs
    assert {asset: http(f"{web}{asset}")[0] for asset in assets} == dict.fromkeys(assets, 200)

    # `web` (the emulator's in-network host) is allowed; another host is not.
    assert http(f"{web}/health", headers={"Host": "web:8000"})[0] == 200
    assert http(f"{web}/health", headers={"Host": "evil.example"})[0] == 400

    # `docker compose exec web python manage.py create_project …`
    created = stack.run(
        "web",
        [
            "python",
            "manage.py",
            "create_project",
            "shop",
            "--name",
            "Shop",
            "--redirect-host",
            "shop.example",
            "--json",
        ],
    )
    assert created.returncode == 0, created.stderr
    api_key = json.loads(created.stdout)["api_key"]
    _mcp_answers_an_agent_key(stack, web, api_key)
    _pay_and_complete(stack, web, api_key, "order-1")
    # Every event the emulator delivered was stored once and processed by the worker.
    assert wait_for(lambda: set(_stripe_events(database_url).values()) == {"processed"}, timeout=30), (
        _stripe_events(database_url),
        stack.logs(),
    )
    assert {"checkout.session.completed", "payment_intent.succeeded"} <= set(_stripe_events(database_url))

    # Beat runs its schedule (the 15-second delivery sweep is the first due).
    assert wait_for(lambda: "Sending due task" in stack.output("beat"), timeout=40), stack.logs()

    # A second start-up of everything: the emulator reloads its volume, web finds its endpoint and changes nothing.
    stack.down()
    stack.up()
    stack.wait_healthy("web")
    assert [e["id"] for e in _webhook_endpoints(stack)] == [endpoints[0]["id"]]
    assert f"{web}/webhooks/stripe is already registered ({endpoints[0]['id']})" in stack.output("web")
    # The stored signing secret still verifies the reloaded emulator's deliveries.
    _pay_and_complete(stack, web, api_key, "order-2")


def _option(command: str, flag: str) -> int:
    found = re.findall(rf"{flag} (\d+)\b", command)
    assert len(found) == 1, (flag, command)
    return int(found[0])


def test_stop_grace_periods_let_requests_and_tasks_in_flight_finish() -> None:
    """SIGTERM drains (tests/deploy/test_graceful_web.py, tests/webhooks/test_pipeline.py::test_sigterm_…) only
    if Docker waits for the drain: its default of 10 s would kill a request waiting on Stripe or a running task.
    The file's figures follow from the code's own timeouts, the image's command serves like compose's web, and
    the runbook states them."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    web = " ".join(services["web"]["command"])
    request_limit, graceful = _option(web, "--timeout"), _option(web, "--graceful-timeout")
    # One Stripe call: STRIPE_TIMEOUT_SECONDS per try, 1 + STRIPE_MAX_NETWORK_RETRIES tries.
    stripe_call = settings.STRIPE_TIMEOUT_SECONDS * (1 + settings.STRIPE_MAX_NETWORK_RETRIES)
    assert (stripe_call, request_limit, graceful) == (60, 90, 90)
    assert request_limit > stripe_call  # gunicorn does not kill a worker still waiting on Stripe
    assert graceful >= request_limit  # on SIGTERM, a request in flight gets as long as any request may take
    assert stop_grace_seconds(services["web"]) == 100 > graceful
    # A task runs CELERY_TASK_TIME_LIMIT at most (Celery kills it then); the worker's warm shutdown waits for it.
    assert settings.CELERY_TASK_TIME_LIMIT == 300
    assert stop_grace_seconds(services["worker"]) == 330 > settings.CELERY_TASK_TIME_LIMIT

    dockerfile_cmd = next(
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")
    )
    assert (_option(dockerfile_cmd, "--timeout"), _option(dockerfile_cmd, "--graceful-timeout")) == (90, 90)

    runbook = (ROOT / "docs" / "operations.md").read_text()
    for text in (
        "`stop_grace_period: 100s`",
        "`stop_grace_period: 330s`",
        "`--graceful-timeout 90`",
        "`--timeout 90`",
    ):
        assert text in runbook, text


@pytest.mark.parametrize(
    ("duration", "seconds"), [("100s", 100.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0)]
)
def test_stop_grace_seconds_reads_compose_durations(duration: str, seconds: float) -> None:
    assert stop_grace_seconds({"stop_grace_period": duration}) == seconds
    assert stop_grace_seconds({}) == 10.0
