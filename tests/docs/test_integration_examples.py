"""Every shell example of docs/integration.md runs as written against `make demo`: the examples are read from the
guide, run by bash in order (the variables one sets hold for the next), with curl, against a live server seeded
exactly as `make demo` seeds it, and each command must answer what its `# → NNN {…}` lines document: the status,
and the JSON, compared value by value with the demo's answer. A `…` there stands for what the guide leaves out —
more fields, more items, any value, or the random part of an id or a time ("pay_…", "…Z") — so ids and times are
excepted, and everything else the guide shows must be what the demo answers.

Only the placeholders change: the key (`tg_sk_…`) becomes the demo's key, `make demo`'s address (127.0.0.1:8000)
the live server's, its Stripe emulator's (127.0.0.1:12111) and its MCP server's (127.0.0.1:8001) the test's. Every
other value a command needs (a payment's id) it takes from an answer, as a reader's shell would
(`PAYMENT=$(curl … | python3 -c …)`). Where an example says the user paid ("# after paying on the checkout
page above, from Germany (DE)"), the test pays that checkout on the emulator's page first.

The Python examples run as written too, in the guide's order and in one namespace (each builds on the previous
ones: the client, the customer, the payment, the endpoint's secret), with `TOLLGATE_API_KEY` and `TOLLGATE_URL`
set as the guide says (and, for "Agents", `TOLLGATE_AGENT_KEY` and `TOLLGATE_MCP_URL`). Each must run without an
exception, and a block that ends with `expression  # → value` must evaluate to that value. The webhook example's
`body` and `signature` are what Tollgate delivers for the guide's payment once the user has paid on Stripe's
Checkout page.
"""

import ast
import json
import re
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from agents.mcp_http import mcp_http_app
from agents.services.keys import agent_key_create
from catalog.models import Feature, Price
from core.actors import Actor
from events.models import Event
from events.representations import event_payload
from events.signing import signature_header
from projects.models import Project
from tests.agents.mcp_servers import serving
from tests.clients.conftest import complete_checkout

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "integration.md"
FENCE = re.compile(r"^[ ]*```(\w+)\n(.*?)^[ ]*```$", re.MULTILINE | re.DOTALL)
DEMO_ADDRESS = "http://127.0.0.1:8000"
STATUS_MARK = "@@status "

pytestmark = pytest.mark.django_db(transaction=True)  # the live server's thread reads committed rows only


def _blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(GUIDE.read_text()) if lang == language]


def _shell_examples() -> list[str]:
    """The shell blocks that talk HTTP (not `pip install` or `manage.py`), dedented, in the guide's order."""
    found = []
    for body in _blocks("sh"):
        if "curl " not in body:
            continue
        indent = min(len(line) - len(line.lstrip()) for line in body.splitlines() if line.strip())
        found.append("\n".join(line[indent:] for line in body.splitlines()))
    return found


def _python_examples() -> list[str]:
    return [textwrap.dedent(body) for body in _blocks("python")]


def _documented_value(example: str) -> tuple[str, Any] | None:
    """`(expression, value)` when the block's last line is `expression  # → value`."""
    last = example.rstrip().splitlines()[-1]
    documented = re.fullmatch(r"(\S.*?)\s+# → (.+)", last)
    return (documented.group(1), ast.literal_eval(documented.group(2))) if documented else None


def _documented_answers(example: str) -> list[tuple[int, str]]:
    """`(status, answer)` of each `# → NNN answer` of an example, in order; an answer goes on over the comment
    lines that follow it (`#     "prices": …`)."""
    answers: list[tuple[int, str]] = []
    for line in example.splitlines():
        mark = re.match(r"# → (\d{3})\s?(.*)$", line)
        if mark:
            answers.append((int(mark.group(1)), mark.group(2)))
        elif answers and line.startswith("#  ") and not line.startswith("# → "):
            status, text = answers[-1]
            answers[-1] = (status, f"{text} {line[1:].strip()}")
        elif answers and not line.startswith("#"):
            answers.append((0, ""))  # a command after an answer: its own answer follows
    return [answer for answer in answers if answer[0]]


# --- the documented answers: JSON with "…" for what is left out, compared with what the demo answers ------------


@dataclass(frozen=True)
class _Object:
    fields: dict[str, Any]
    more: bool  # "…": other fields may follow


@dataclass(frozen=True)
class _List:
    items: list[Any]
    more: bool  # "…" (or "[...]"): more items may follow the documented ones


@dataclass(frozen=True)
class _Text:
    """A string with "…" in it: "pay_…" (an id), "…Z" (a time), "http://…/cs_test_…" (a URL)."""

    pattern: re.Pattern[str]


_ANY = object()  # "…" as a value: any value
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\.\.\.|…|-?\d+(?:\.\d+)?|true|false|null|[{}\[\]:,])')


def _documented(text: str) -> Any:
    """The pattern of a documented answer (trailing prose, such as "(200 when user-42 was known)", is ignored)."""
    tokens = []
    position = 0
    while match := _TOKEN.match(text, position):
        tokens.append(match.group(1))
        position = match.end()
    pattern, _ = _value(tokens, 0)
    return pattern


def _value(tokens: list[str], at: int) -> tuple[Any, int]:
    token = tokens[at]
    if token in ("…", "..."):
        return _ANY, at + 1
    if token == "{":
        fields: dict[str, Any] = {}
        more, at = False, at + 1
        while tokens[at] != "}":
            if tokens[at] in ("…", "..."):
                more, at = True, at + 1
            else:
                key = json.loads(tokens[at])
                assert tokens[at + 1] == ":", tokens[at : at + 3]
                fields[key], at = _value(tokens, at + 2)
            if tokens[at] == ",":
                at += 1
        return _Object(fields, more), at + 1
    if token == "[":
        items: list[Any] = []
        more, at = False, at + 1
        while tokens[at] != "]":
            if tokens[at] in ("…", "..."):
                more, at = True, at + 1
            else:
                item, at = _value(tokens, at)
                items.append(item)
            if tokens[at] == ",":
                at += 1
        return _List(items, more), at + 1
    value = json.loads(token)
    if isinstance(value, str) and "…" in value:
        return _Text(re.compile(".*".join(re.escape(part) for part in value.split("…")), re.DOTALL)), at + 1
    return value, at + 1


def _differences(pattern: Any, actual: Any, path: str = "answer") -> list[str]:
    """Where `actual` (the demo's answer) differs from the documented `pattern`."""
    if pattern is _ANY:
        return []
    if isinstance(pattern, _Object):
        return _object_differences(pattern, actual, path)
    if isinstance(pattern, _List):
        return _list_differences(pattern, actual, path)
    if isinstance(pattern, _Text):
        matches = isinstance(actual, str) and pattern.pattern.fullmatch(actual)
        return [] if matches else [f"{path}: {actual!r}"]
    same_type = type(pattern) is type(actual) or {type(pattern), type(actual)} <= {int, float}
    return [] if same_type and pattern == actual else [f"{path}: {actual!r}, documented {pattern!r}"]


def _object_differences(pattern: _Object, actual: Any, path: str) -> list[str]:
    if not isinstance(actual, dict):
        return [f"{path}: {actual!r} is not an object"]
    found = []
    if not pattern.more and set(actual) != set(pattern.fields):
        found.append(f"{path}: fields {sorted(actual)}")
    for key, value in pattern.fields.items():
        if key not in actual:
            found.append(f"{path}.{key}: missing")
        else:
            found += _differences(value, actual[key], f"{path}.{key}")
    return found


def _list_differences(pattern: _List, actual: Any, path: str) -> list[str]:
    if not isinstance(actual, list):
        return [f"{path}: {actual!r} is not a list"]
    documented = len(pattern.items)
    if len(actual) < documented or (not pattern.more and len(actual) != documented):
        return [f"{path}: {len(actual)} items, documented {documented}{' or more' * pattern.more}"]
    found = []
    for index, item in enumerate(pattern.items):
        found += _differences(item, actual[index], f"{path}[{index}]")
    return found


def test_the_documented_answers_are_read_as_written():
    answer = _documented(
        '{"id": "pay_…", "amount": 2261, "lines": [{"x": 1}, …], "url": "http://h/…/cs_…", "more": …, …} (prose)'
    )
    demo = {
        "id": "pay_1",
        "amount": 2261,
        "lines": [{"x": 1}, {"x": 2}],
        "url": "http://h/a/cs_1",
        "more": [],
    }
    assert _differences(answer, {**demo, "n": 1}) == []
    drifted = {"id": "pi_1", "amount": 2262, "lines": [], "url": "http://h/cs_1", "more": 1}
    assert _differences(answer, drifted) == [
        "answer.id: 'pi_1'",
        "answer.amount: 2262, documented 2261",
        "answer.lines: 0 items, documented 1 or more",
        "answer.url: 'http://h/cs_1'",
    ]
    closed = _documented('{"id": "pay_…", "status": "pending", "tags": []}')
    assert _differences(closed, {"id": "pay_1", "status": "pending", "tags": [], "extra": True}) == [
        "answer: fields ['extra', 'id', 'status', 'tags']"
    ]
    assert _differences(closed, {"id": "pay_1", "status": "pending", "tags": ["a"]}) == [
        "answer.tags: 1 items, documented 0"
    ]


def test_the_guide_has_its_shell_examples():
    examples = _shell_examples()
    assert len(examples) == 25
    for example in examples:  # one documented answer per command
        assert len(_documented_answers(example)) == len(re.findall(r"^curl ", example, re.MULTILINE)), example


def test_the_shell_examples_need_nothing_a_bare_machine_lacks():
    # uuidgen is in Debian's uuid-runtime: where it is missing, `$(uuidgen)` sends an empty Idempotency-Key.
    commands = {"uuidgen"}
    used = {name for example in _blocks("sh") for name in commands if re.search(rf"\b{name}\b", example)}
    assert used == set()


def test_the_guide_addresses_subscriptions_by_their_tollgate_id():
    # /subscriptions/{id} takes Tollgate's id (subs_…); a Stripe id (sub_…) answers 404 there.
    named = set(re.findall(r"/api/v1/subscriptions/([^/\s`]+)", GUIDE.read_text()))
    assert {found for found in named if not found.startswith(("subs_", "{"))} == {"version_moves"}  # a route
    assert "subs_…" in named


# The emulator `make demo` starts (Makefile: EMULATOR_PORT), whose pages the demo's checkout URLs name.
DEMO_STRIPE = "http://127.0.0.1:12111"
# The MCP server `make demo` serves beside (Makefile: MCP_PORT), which the guide's "Agents" calls.
DEMO_MCP = "http://127.0.0.1:8001"
PAID_FROM = re.compile(r"^# after paying on the checkout page above, from [\w ]+ \((\w\w)\)", re.MULTILINE)


@pytest.fixture
def mcp_server() -> Iterator[str]:
    """The MCP server (config.mcp's app) on the test database, under uvicorn; its base URL."""
    with serving(mcp_http_app()) as base:
        yield base


def test_every_shell_example_answers_what_it_documents(
    live_server, seed_demo, emulator_over_http, stripe_emulator, stripe_webhooks, mcp_server
):
    """Each example runs as written (its own bash, with the variables the earlier ones set), and each command
    answers the status and the JSON its `# →` line documents, ids and times excepted ("pay_…", "…Z")."""
    demo = seed_demo()
    examples = _shell_examples()
    assert DEMO_ADDRESS in "\n".join(examples)  # the address really is make demo's
    # Each curl the example shows also prints its status (not one whose answer goes into a pipe, such as
    # `PAYMENT=$(curl … | python3 …)`). Nothing else is stood in for: the guide uses only what a bare machine has
    # (no uuidgen, which Debian ships apart in uuid-runtime).
    prelude = [
        f'curl() {{ if [ -p /dev/stdout ]; then command curl "$@"; '
        f"else command curl -w '\\n{STATUS_MARK}%{{http_code}}\\n' \"$@\"; fi; }}"
    ]
    answered: list[dict[str, Any]] = []
    for example in examples:
        if paid := PAID_FROM.search(example):
            session = next(a["stripe_session_id"] for a in reversed(answered) if "stripe_session_id" in a)
            _pay(stripe_emulator, session, country=paid.group(1))
            stripe_webhooks.deliver()
        filled = _placeholders(example, demo)
        script = (
            "\n".join([*prelude, filled]).replace(DEMO_ADDRESS, live_server.url).replace(DEMO_MCP, mcp_server)
        )
        with tempfile.TemporaryFile(
            "w+"
        ) as stdout:  # a file, not a pipe: the examples' own pipes are told apart
            run = subprocess.run(
                ["bash", "-eu", "-o", "pipefail", "-c", script],
                stdout=stdout,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
            )
            stdout.seek(0)
            printed = stdout.read()
        assert run.returncode == 0, (example, run.stderr)
        outputs = re.findall(rf"(.*?)\n{STATUS_MARK}(\d{{3}})\n", printed, re.DOTALL)
        documented = _documented_answers(example)
        assert len(outputs) == len(documented), (example, printed)
        for (body, status), (documented_status, text) in zip(outputs, documented, strict=True):
            answer = json.loads(body)
            assert int(status) == documented_status, (example, answer)
            pattern = _documented(text.replace(DEMO_STRIPE, emulator_over_http))
            assert _differences(pattern, answer) == [], (example, answer)
            answered.append(answer)
        # The variables an example sets (TOLLGATE=…, KEY=…) hold for the later ones, as in one shell session (one
        # taken from an answer, `PAYMENT=$(curl …)`, is for its own example).
        prelude += [line for line in filled.splitlines() if re.match(r"[A-Z_]+=(?!\$\()", line)]


def _placeholders(example: str, demo: dict[str, Any]) -> str:
    """The example with its one placeholder filled in: the key `make demo` printed (`KEY=tg_sk_…`)."""
    return example.replace("tg_sk_…", demo["api_key"])


def test_the_shell_examples_leave_nothing_to_fill_in_but_the_key():
    """A reader runs them as written: no "pay_…" or "sub_…" to replace by hand; the ids come from the answers."""
    for example in _shell_examples():
        commands = [line for line in example.splitlines() if not line.lstrip().startswith("#")]
        code = "\n".join(line.split("  #")[0] for line in commands)  # a comment after a command is prose
        assert "…" not in code.replace("KEY=tg_sk_…", ""), example


def _pay(stripe_emulator, session_id: str, *, country: str) -> None:
    """The user pays on the emulator's Checkout page with a card, giving `country` as the billing address."""
    response = stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{session_id}/complete",
        query="",
        body=urlencode({"card": "4242424242424242", "address[country]": country}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 200, response


def test_the_python_examples_name_the_demo_catalog_and_hosts(seed_demo):
    seed_demo()
    project = Project.objects.get(slug="demo")
    code = "\n".join(_blocks("python") + _shell_examples())
    prices = set(re.findall(r'\bprice"?\s*[=:]\s*"([\w-]+)"', code))
    features = set(re.findall(r'\bfeature"?\s*[=:]\s*"([\w-]+)"', code))
    created = set(re.findall(r'features\.create\(key="([\w-]+)"', code))  # made by the guide itself
    assert prices == {"starter-monthly", "pro-monthly", "pro-api-overage-monthly", "ai-credits-1000"}
    assert features == {
        "api_calls",
        "searches",
        "summaries",
        "ai_credits",
        "workspaces",
        "notes",
        "assistant",
    }
    assert created == {"exports", "searches", "summaries", "workspaces", "notes"}
    assert prices <= set(Price.objects.filter(project=project, active=True).values_list("key", flat=True))
    assert features - created <= set(Feature.objects.filter(project=project).values_list("key", flat=True))
    redirects = re.findall(r'\b(?:success|cancel|return)_url"?\s*[=:]\s*"(https?://[^"]+)"', code)
    assert redirects
    assert {urlsplit(url).netloc for url in redirects} <= set(project.allowed_redirect_hosts)


def test_the_guide_has_its_python_examples():
    examples = _python_examples()
    assert len(examples) == 28
    assert "…" not in "".join(examples)
    assert [_documented_value(example) for example in examples if _documented_value(example)] == [
        ("tollgate.project.retrieve().slug", "demo"),
        ("payment.status", "pending"),
        ("receive(body, signature)", 200),
        ('tollgate.entitlements.holds.retrieve("report-31").hold.status', "confirmed"),
        ("(refused.allowed, refused.binding, left)", (False, "minute", [("minute", 0), ("day", 47)])),
        ("cap.cap", {"units": 5000, "at_cap": "alert"}),
        ("(account.feature, account.cap)", (None, {"amount": 30000, "currency": "usd", "at_cap": "block"})),
        (
            "(asked.step, used.credits.covered, used.credits.balance, after.binding)",
            ("credits", 2, 5, "period"),
        ),
        (
            "(design.entity.remaining, design.remaining, sales.allowed, sales.binding)",
            (0, 3, False, "period"),
        ),
        (
            "(third.allowed, third.binding, third.entity.binding, day.remaining)",
            (False, "entity", "day", 0),
        ),
        ("(spent.balance, spent.entity.balance, sales.allowed)", (20, 20, False)),
        ('tollgate.credits.retrieve(customer="user-79", feature="ai_credits").balance', 20),
        ("(version, call.quantity, call.cost.micros, call.cost.cost_table)", (1, 9, 6000, 1)),
        ("(held.hold.quantity, done.hold.overrun, done.hold.actual.cost.micros)", (17, 24, 26950)),
        (
            "(row.model, row.cost_micros, row.billed_micros, row.margin_bps)",
            ("gpt-4o", 6000, 0, None),
        ),
        ('asyncio.run(look_up("user-42"))', (["customer_lookup", "subscriptions_list"], "ada@example.com")),
    ]


def _delivery_of_the_paid_payment(namespace: dict[str, Any], stripe_emulator, stripe_webhooks) -> None:
    """The user pays the guide's payment on Stripe's Checkout page; `body` and `signature` become what Tollgate
    then delivers to the guide's endpoint (the signed `payment.succeeded`, as `delivery_send` builds it)."""
    payment = namespace["payment"]
    complete_checkout(stripe_emulator, payment.stripe_checkout_session_id)
    stripe_webhooks.deliver()
    event = Event.objects.get(type="payment.succeeded", data__object__id=payment.id)
    namespace["body"] = json.dumps(event_payload(event), separators=(",", ":")).encode()
    namespace["signature"] = signature_header(
        body=namespace["body"], secrets=[namespace["secret"]], timestamp=int(time.time())
    )


def _a_fresh_minute_if_few_seconds_left(seconds: int = 20) -> None:
    """An example whose answer counts a minute window (3 a minute, then refused) runs inside one minute of the
    clock: with fewer than `seconds` left in this one, it waits for the next (CI once saw the consumes straddle
    a minute's end, so the refused one was the first of a new minute)."""
    left = 60 - datetime.now(UTC).second
    if left < seconds:
        time.sleep(left + 0.1)


def test_every_python_example_runs_as_written(
    live_server, seed_demo, stripe_emulator, stripe_webhooks, monkeypatch, capsys, mcp_server
):
    demo = seed_demo()
    monkeypatch.setenv("TOLLGATE_API_KEY", demo["api_key"])
    monkeypatch.setenv("TOLLGATE_URL", live_server.url)
    # "Agents": the support assistant's key (read-only, as the guide's shell example creates it) and the MCP server.
    _, agent_key = agent_key_create(
        actor=Actor.system("tests"), project=Project.objects.get(slug="demo"), name="support-assistant"
    )
    monkeypatch.setenv("TOLLGATE_AGENT_KEY", agent_key)
    monkeypatch.setenv("TOLLGATE_MCP_URL", f"{mcp_server}/mcp")
    namespace: dict[str, Any] = {"__name__": "integration_guide"}
    try:
        for example in _python_examples():
            if "construct_event(body, signature" in example:
                _delivery_of_the_paid_payment(namespace, stripe_emulator, stripe_webhooks)
            if '"minute":' in example:
                _a_fresh_minute_if_few_seconds_left()
            module = ast.parse(example)
            documented = _documented_value(example)
            if documented is None:
                exec(compile(module, "integration.md", "exec"), namespace)
                continue
            *before, last = module.body
            assert isinstance(last, ast.Expr), example
            exec(compile(ast.Module(body=before, type_ignores=[]), "integration.md", "exec"), namespace)
            value = eval(compile(ast.Expression(body=last.value), "integration.md", "eval"), namespace)
            assert value == documented[1], (example, value)
        assert capsys.readouterr().out == "paid: order-42\n"
        assert namespace["receive"](namespace["body"] + b" ", namespace["signature"]) == 400
        assert namespace["session"].status == "open"
        assert namespace["tollgate"].prices.retrieve("team-monthly").unit_amount == 2900
    finally:
        # Its kept-alive connection would hold a live-server thread, and that thread's database session, open.
        if "tollgate" in namespace:
            namespace["tollgate"].close()
