"""`make demo`'s checkout, in a real browser: the printed curl creates a subscription checkout, the user pays on
the emulator's hosted page and lands on the demo's return page, which says what happened — the payment, the
subscription and what the customer may now use — instead of a JSON probe.

The test's emulator is served over HTTP (its checkout page must be reachable by the browser) and Tollgate talks to
it there, as `make demo` does; its webhooks go over HTTP to the live server when the test flushes them.
"""

import io
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections
from playwright.sync_api import Page, expect, sync_playwright

from billing.models import Payment, Subscription
from tests.browser.test_operator_journey import CHROMIUM, CHROMIUM_ARGS

SCREENSHOTS = Path(os.environ.get("TOLLGATE_SCREENSHOT_DIR", "/tmp"))

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"Debian's chromium is not installed at {CHROMIUM}"
    ),
]


@pytest.fixture
def browser_page(live_server, monkeypatch) -> Iterator[Page]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # see test_operator_journey.page
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 900, "height": 1100})
            tab.set_default_timeout(60_000)
            yield tab
        finally:
            browser.close()
            connections.close_all()


def _printed_checkout_curl(output: str) -> str:
    """The `curl … checkout/subscription …` that demo_setup printed, with its continuation line."""
    match = re.search(r"^  (curl -s \S+/api/v1/checkout/subscription .*\\\n.*)$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def test_a_demo_checkout_lands_on_a_page_that_says_what_happened(
    browser_page, live_server, emulator_over_http, stripe_emulator, settings, tmp_path
):
    settings.DEMO_PAGES = True
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
    curl = _printed_checkout_curl(output.getvalue())
    assert f"{live_server.url}/demo/return?session_id={{CHECKOUT_SESSION_ID}}" in curl
    answer = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60, check=True)
    session = json.loads(answer.stdout)
    assert (session["status"], session["url"].startswith(emulator_over_http)) == ("open", True)

    page = browser_page
    page.goto(session["url"])
    page.fill("input[name=email]", "demo-user-1@example.com")  # the demo's customer has none: Checkout asks
    page.fill("input[name=card]", "4242 4242 4242 4242")
    page.get_by_role("button", name=re.compile(r"^(Pay|Subscribe|Start trial)")).click()

    page.wait_for_url(re.compile(r"/demo/return\?session_id=cs_"))
    payment = Payment.objects.get(pk=session["payment"])
    expect(page.locator("[data-field=payment-status]")).to_have_text("succeeded")
    expect(page.locator("[data-field=checkout-status]")).to_have_text("complete")
    # Stripe's webhooks bring the subscription and the plan's credits; the page reloads until they are in.
    expect(page.locator("[data-outcome]")).to_have_attribute("data-outcome", "waiting")
    expect(page.locator("#subscription")).to_contain_text("its webhook has not reached Tollgate yet")
    stripe_emulator.flush_webhooks()
    expect(page.locator("[data-field=subscription-status]")).to_have_text("active")
    expect(page.locator("[data-outcome]")).to_have_text(
        "Paid $49.00: demo-user-1 is subscribed to Professional."
    )
    rows = {
        feature: page.locator(f"tr[data-feature={feature}] td").all_inner_texts()
        for feature in ("api_calls", "sso", "seats", "ai_credits", "support_tier")
    }
    assert rows == {
        "api_calls": ["api_calls", "metered", "yes", "0 of 500,000 used"],
        "sso": ["sso", "boolean", "yes", ""],
        "seats": ["seats", "allocation", "yes", "0 of 1 used"],
        "ai_credits": ["ai_credits", "credits", "yes", "1,000 left"],
        "support_tier": ["support_tier", "static", "yes", '{"tier": "priority", "response_hours": 24}'],
    }
    page.screenshot(path=str(SCREENSHOTS / "demo-return.png"), full_page=True)

    subscription = Subscription.objects.get()
    payment.refresh_from_db()
    assert (
        payment.status,
        subscription.status,
        subscription.price.key,
        subscription.customer.external_id,
    ) == (
        "succeeded",
        "active",
        "pro-monthly",
        "demo-user-1",
    )
