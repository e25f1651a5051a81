"""`make demo` prints a usage-based plan's curls (the example catalog's Professional base price with its metered
overage, checked out together as `items`, then a usage record and the period's usage), and they work as printed
against the demo: one subscription with both prices, the usage reported to its meter, what it will bill."""

import io
import json
import subprocess

import pytest
from django.core.management import call_command

from billing.models import Price, Subscription
from tests.clients.conftest import complete_checkout

pytestmark = pytest.mark.django_db(transaction=True)  # the live server's thread reads committed rows only


def _printed(output: str, marker: str) -> list[str]:
    """The curls printed under the line that contains `marker`, each with its continuation lines."""
    curls: list[str] = []
    lines = output[output.index(marker) :].splitlines()
    for index, line in enumerate(lines):
        if line.startswith("  curl "):
            command = [line.strip()]
            while command[-1].endswith("\\"):
                index += 1
                command.append(lines[index].strip())
            curls.append("\n".join(command))
    return curls[:3]


def _run(curl: str) -> dict:
    answer = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(answer.stdout)


def test_the_printed_usage_plan_curls_subscribe_record_and_estimate(
    live_server, emulator_over_http, stripe_emulator, stripe_sdk, tmp_path
):
    output = io.StringIO()
    call_command(
        "demo_setup",
        "--base-url",
        live_server.url,
        "--wait-for-stripe",
        "--credentials",
        str(tmp_path / "demo-credentials.json"),
        stdout=output,
    )
    checkout, record, summary = _printed(output.getvalue(), "A usage-based plan")
    assert "'pro-monthly' ($49.00/month) with the metered 'pro-api-overage-monthly'" in output.getvalue()

    session = _run(checkout)

    assert (session["object"], session["mode"], session["status"]) == (
        "checkout_session",
        "subscription",
        "open",
    )
    lines = stripe_sdk().v1.checkout.sessions.line_items.list(session["stripe_session_id"]).data
    keys = dict(Price.objects.values_list("stripe_price_id", "key"))
    assert sorted(keys[line.price.id] for line in lines) == [
        "pro-api-overage-monthly",
        "pro-monthly",
    ]
    complete_checkout(stripe_emulator, session["stripe_session_id"])
    stripe_emulator.flush_webhooks()
    subscription = Subscription.objects.get(customer__external_id="demo-user-2")
    assert sorted(item.price.key for item in subscription.items.all()) == [
        "pro-api-overage-monthly",
        "pro-monthly",
    ]

    assert _run(record)["stripe_meter"]["status"] == "reported"
    usage = _run(summary)

    # 1,200 calls, all within the plan's 500,000 included ones: reported to the meter, nothing to pay for them.
    assert (usage["quantity"], usage["billed_quantity"], usage["price"], usage["amount_due_estimate"]) == (
        1200,
        1200,
        "pro-api-overage-monthly",
        0,
    )
