"""`make demo` prints a usage-based plan's curls (the example catalog's Professional base price with its metered
overage, checked out together as `items`, then a usage record and the period's usage), and they work as printed
against the demo: one subscription with both prices, the usage reported to its meter, what it will bill; and, over
HTTP end to end, the renewal invoice that bills the period's calls past the included ones by the overage's tiers."""

import io
import json
import re
import subprocess

import pytest
import requests
from django.core.management import call_command

from billing.models import Subscription
from catalog.models import Price
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

    # Past the plan's included calls, then past the period's end, all over HTTP: the renewal invoice bills the
    # next month in advance and this month's calls in arrears, by the overage's graduated tiers (500,000 free,
    # then 0.01 USD each): 501,500 calls → 1,500 × 1 = 15.00 USD.
    key = re.search(r"Bearer (\S+)'", record).group(1)
    headers = {"Authorization": f"Bearer {key}"}
    more = requests.post(
        f"{live_server.url}/api/v1/usage",
        json={"id": "u-2", "customer": "demo-user-2", "feature": "api_calls", "quantity": 500_300},
        headers=headers,
        timeout=30,
    )
    assert more.status_code == 201, more.text
    live = stripe_sdk().v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    seconds = live["items"].data[0].current_period_end - stripe_emulator.clock.now() + 60
    advanced = requests.post(f"{emulator_over_http}/_emulator/advance", data={"seconds": seconds}, timeout=60)
    assert advanced.status_code == 200, advanced.text
    stripe_emulator.flush_webhooks()

    invoices = requests.get(
        f"{live_server.url}/api/v1/invoices",
        params={"customer": "demo-user-2"},
        headers=headers,
        timeout=30,
    ).json()["data"]
    renewal = next(invoice for invoice in invoices if invoice["billing_reason"] == "subscription_cycle")
    keys = dict(Price.objects.values_list("stripe_price_id", "key"))
    lines = sorted(
        (keys[line["stripe_price_id"]], line["quantity"], line["amount"]) for line in renewal["lines"]
    )
    assert lines == [("pro-api-overage-monthly", 501_500, 1_500), ("pro-monthly", 1, 4_900)]
    assert (renewal["status"], renewal["total"], renewal["amount_paid"]) == ("paid", 6_400, 6_400)
