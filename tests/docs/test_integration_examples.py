"""Every shell example of docs/integration.md runs as written against `make demo`: the examples are read from the
guide, run by bash in order (they share its variables), with curl, against a live server seeded exactly as `make
demo` seeds it, and each must answer the status its `# → NNN` line documents (and the `object` it names).

Only the placeholders change: the key (`tg_sk_…`) becomes the demo's key, and `make demo`'s address
(127.0.0.1:8000) the live server's.

The Python examples run as written too, in the guide's order and in one namespace (each builds on the previous
ones: the client, the customer, the payment, the endpoint's secret), with `TOLLGATE_API_KEY` and `TOLLGATE_URL`
set as the guide says. Each must run without an exception, and a block that ends with `expression  # → value`
must evaluate to that value. The webhook example's `body` and `signature` are what Tollgate delivers for the
guide's payment once the user has paid on Stripe's Checkout page.
"""

import ast
import json
import re
import shutil
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from billing.models import Price
from entitlements.models import Feature
from projects.models import Project
from tests.clients.conftest import complete_checkout
from webhooks.models import Event
from webhooks.outbound import event_payload
from webhooks.signing import signature_header

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


def test_the_guide_has_its_shell_examples():
    examples = _shell_examples()
    assert len(examples) == 7
    assert all(len(re.findall(r"^# → \d{3}", example, re.MULTILINE)) == 1 for example in examples)


def test_every_shell_example_answers_its_documented_status(live_server, seed_demo):
    demo = seed_demo()
    examples = _shell_examples()
    # Each curl also prints its status; uuidgen, where the system lacks it, is stood in for by Python's.
    script = [f"curl() {{ command curl -w '\\n{STATUS_MARK}%{{http_code}}\\n' \"$@\"; }}"]
    if shutil.which("uuidgen") is None:
        script.append("uuidgen() { python3 -c 'import uuid; print(uuid.uuid4())'; }")
    for index, example in enumerate(examples):
        script += [f"echo '@@example {index}'", example]
    text = "\n".join(script).replace("tg_sk_…", demo["api_key"]).replace(DEMO_ADDRESS, live_server.url)
    assert DEMO_ADDRESS in "\n".join(examples)  # the address really is make demo's

    run = subprocess.run(["bash", "-eu", "-c", text], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    outputs = run.stdout.split("@@example ")[1:]
    assert len(outputs) == len(examples)
    for example, output in zip(examples, outputs, strict=True):
        body, _, status = output.split("\n", 1)[1].rpartition(STATUS_MARK)
        documented = re.search(r"^# → (\d{3})(.*)$", example, re.MULTILINE)
        assert documented is not None
        assert int(status) == int(documented.group(1)), (example, body)
        answer = json.loads(body)
        named = re.search(r'"object": "(\w+)"', documented.group(2))
        if named:
            assert answer["object"] == named.group(1), (example, answer)
        assert set(re.findall(r'"(\w+)":', documented.group(2))) <= set(answer), (example, answer)
        for field, prefix in re.findall(r'"(\w+)": "(\w+_)…"', documented.group(2)):
            assert str(answer[field]).startswith(prefix), (example, answer)


def test_the_python_examples_name_the_demo_catalog_and_hosts(seed_demo):
    seed_demo()
    project = Project.objects.get(slug="demo")
    code = "\n".join(_blocks("python") + _shell_examples())
    prices = set(re.findall(r'\bprice"?\s*[=:]\s*"([\w-]+)"', code))
    features = set(re.findall(r'\bfeature"?\s*[=:]\s*"([\w-]+)"', code))
    assert prices == {"starter-monthly", "pro-monthly", "pro-api-overage-monthly", "ai-credits-1000"}
    assert features == {"api_calls"}
    assert prices <= set(Price.objects.filter(project=project, active=True).values_list("key", flat=True))
    assert features <= set(Feature.objects.filter(project=project).values_list("key", flat=True))
    redirects = re.findall(r'\b(?:success|cancel|return)_url"?\s*[=:]\s*"(https?://[^"]+)"', code)
    assert redirects
    assert {urlsplit(url).netloc for url in redirects} <= set(project.allowed_redirect_hosts)


def test_the_guide_has_its_python_examples():
    examples = _python_examples()
    assert len(examples) == 10
    assert "…" not in "".join(examples)
    assert [_documented_value(example) for example in examples if _documented_value(example)] == [
        ("tollgate.project.retrieve().slug", "demo"),
        ("payment.status", "pending"),
        ("receive(body, signature)", 200),
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


def test_every_python_example_runs_as_written(
    live_server, seed_demo, stripe_emulator, stripe_webhooks, monkeypatch, capsys
):
    demo = seed_demo()
    monkeypatch.setenv("TOLLGATE_API_KEY", demo["api_key"])
    monkeypatch.setenv("TOLLGATE_URL", live_server.url)
    namespace: dict[str, Any] = {"__name__": "integration_guide"}
    try:
        for example in _python_examples():
            if "construct_event(body, signature" in example:
                _delivery_of_the_paid_payment(namespace, stripe_emulator, stripe_webhooks)
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
