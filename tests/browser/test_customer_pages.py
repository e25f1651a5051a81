"""What a tenant's customer sees, in a real browser: the Stripe emulator's Checkout (paid and trial), customer
portal and hosted invoice pages, reached through the URLs Tollgate's API hands out.

The emulator is served over HTTP on a free port and Tollgate's gateway talks to it over the network (the
`stripe_emulator` fixture is overridden here), so every URL must carry the emulator's real public base.
Playwright (sync API) drives Debian's `chromium`. Django's ORM is only used outside the Playwright blocks (its
event loop would give ORM calls a connection of their own). Screenshots go to `$TOLLGATE_SCREENSHOT_DIR`, else
the test's tmp dir.
"""

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from playwright.sync_api import Browser, Page, expect, sync_playwright

from customers.models import Customer
from stripe_emulator import Emulator
from stripe_emulator.core.html import STYLE, format_date
from stripe_emulator.server import serve_in_thread
from stripe_gateway.client import install_http_client
from tests.browser.test_operator_journey import CHROMIUM, CHROMIUM_ARGS

OK = "https://app.example.com/ok"
CANCEL = "https://app.example.com/cancel"
VIEWPORTS = {"desktop": (1366, 768), "phone": (390, 844)}
DAY = 86_400

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"Debian's chromium is not installed at {CHROMIUM} (`apt-get install -y chromium`; .ci/run does it)",
    ),
]


@pytest.fixture
def stripe_emulator(settings: Any) -> Iterator[Emulator]:
    """Overrides the in-process emulator of tests/conftest.py: this one is served, and the gateway uses HTTP."""
    emulator = Emulator(webhook_mode="manual")
    server = serve_in_thread(emulator)
    settings.STRIPE_API_BASE = server.url
    install_http_client(None)
    try:
        yield emulator
    finally:
        server.shutdown()
        server.server_close()
        emulator.close()


@pytest.fixture
def base(stripe_emulator: Emulator) -> str:
    assert stripe_emulator.public_url is not None
    return stripe_emulator.public_url


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("TOLLGATE_SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def browse(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Callable[[Browser], Any]], Any]]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    def run(steps: Callable[[Browser], Any]) -> Any:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                return steps(browser)
            finally:
                browser.close()

    yield run
    connections.close_all()


def _tab(browser: Browser, viewport: str) -> Page:
    width, height = VIEWPORTS[viewport]
    tab = browser.new_page(viewport={"width": width, "height": height})
    tab.set_default_timeout(60_000)
    # The tenant's app is not running: its redirect targets answer with a stub page.
    tab.route("https://app.example.com/**", lambda route: route.fulfill(body="<h1>Back in the app</h1>"))
    return tab


def _house_look(tab: Page, viewport: str) -> None:
    """The stylesheet and layout every hosted page shares, fitting the screen without sideways scrolling."""
    assert tab.evaluate("document.querySelector('style').textContent") == STYLE
    assert tab.evaluate("getComputedStyle(document.body).fontFamily").startswith("-apple-system")
    direction = tab.evaluate("getComputedStyle(document.querySelector('.layout')).flexDirection")
    assert direction == ("row" if viewport == "desktop" else "column")
    assert tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(tab.locator(".brand")).to_contain_text("Stripe emulator")
    assert tab.evaluate("getComputedStyle(document.querySelector('.button')).backgroundColor") in (
        "rgb(99, 91, 255)",  # the primary button
        "rgb(255, 255, 255)",  # the secondary one (portal, invoice)
    )


def test_a_trial_checkout_starts_a_trial_and_the_typed_email_reaches_the_customer(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, base, browse, shots
):
    created = api.post(
        "/api/v1/checkout/subscription",
        {
            "customer": "user-7",
            "price": "pro-monthly",
            "trial_days": 14,
            "success_url": OK,
            "cancel_url": CANCEL,
        },
        key=tenant_a.key,
    ).json()
    assert created["url"] == f"{base}/checkout/pay/{created['stripe_session_id']}"
    trial_ends = format_date(stripe_emulator.clock.now() + 14 * DAY)

    def steps(browser: Browser) -> None:
        for viewport in ("phone", "desktop"):  # the desktop one pays
            tab = _tab(browser, viewport)
            tab.goto(created["url"])
            _house_look(tab, viewport)
            expect(tab.locator(".summary .amount")).to_have_text("14 days free")
            expect(tab.locator(".summary .then")).to_have_text(f"Then $30.00/month starting {trial_ends}")
            expect(tab.locator(".totals .grand")).to_have_text("Total due today$0.00")
            expect(tab.locator(".totals")).to_contain_text("Total after trial$30.00/month")
            expect(tab.get_by_role("button")).to_have_text("Start trial")
            expect(tab.locator("body")).not_to_contain_text("Pay $")
            expect(tab.locator("form .note")).to_have_text(
                f"$30.00/month after the trial ends on {trial_ends}. Nothing is charged today."
            )
            tab.screenshot(path=str(shots / f"checkout-trial-{viewport}.png"), full_page=True)
        tab.fill("#email", "ada@example.com")
        tab.get_by_role("button", name="Start trial").click()
        tab.wait_for_url(f"{OK}**")
        expect(tab.locator("h1")).to_have_text("Back in the app")

    browse(steps)
    stripe_webhooks.deliver()
    payment = api.get(f"/api/v1/payments/{created['payment']}", key=tenant_a.key).json()
    assert (payment["status"], payment["amount"]) == ("no_payment_required", 0)
    subscription = api.get("/api/v1/subscriptions?customer=user-7", key=tenant_a.key).json()["data"][0]
    assert subscription["status"] == "trialing"
    assert api.get("/api/v1/customers/user-7", key=tenant_a.key).json()["email"] == "ada@example.com"
    assert Customer.objects.get(project=tenant_a.project, external_id="user-7").email == "ada@example.com"


def test_paid_checkout_portal_and_invoice_look_alike_and_live_at_the_emulators_address(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, base, browse, shots
):
    api.post("/api/v1/customers", {"external_id": "user-8", "email": "grace@example.com"}, key=tenant_a.key)
    item = api.post(
        "/api/v1/checkout/item",
        {
            "customer": "user-8",
            "price": "credits-1000",
            "quantity": 2,
            "success_url": OK,
            "cancel_url": CANCEL,
        },
        key=tenant_a.key,
    ).json()
    subscription = api.post(
        "/api/v1/checkout/subscription",
        {"customer": "user-8", "price": "pro-monthly", "success_url": OK, "cancel_url": CANCEL},
        key=tenant_a.key,
    ).json()
    assert item["url"] == f"{base}/checkout/pay/{item['stripe_session_id']}"

    def pay_subscription(browser: Browser) -> None:
        tab = _tab(browser, "desktop")
        tab.goto(subscription["url"])
        expect(tab.locator("#email")).to_have_value("grace@example.com")
        expect(tab.locator("#email")).to_have_attribute("readonly", "")
        tab.get_by_role("button", name="Subscribe").click()
        tab.wait_for_url(f"{OK}**")

    browse(pay_subscription)
    stripe_webhooks.deliver()
    # The portal offers the project's public plans: Pro (30.00 and 28.00 EUR a month) and Team (90.00 a month).
    assert api.patch("/api/v1/products/pro", {"public": True}, key=tenant_a.key).status_code == 200
    api.post("/api/v1/products", {"key": "team", "name": "Team", "public": True}, key=tenant_a.key)
    team = {"key": "team-monthly", "product": "team", "currency": "usd", "unit_amount": 9000, "type": "recurring",
            "interval": "month"}  # fmt: skip
    assert api.post("/api/v1/prices", team, key=tenant_a.key).status_code == 201
    invoice = api.get("/api/v1/invoices?customer=user-8", key=tenant_a.key).json()["data"][0]
    assert invoice["hosted_invoice_url"] == f"{base}/invoices/{invoice['stripe_invoice_id']}"
    assert invoice["invoice_pdf"] == f"{base}/invoices/{invoice['stripe_invoice_id']}/pdf"
    portal = api.post(
        "/api/v1/portal",
        {"customer": "user-8", "return_url": "https://app.example.com/account"},
        key=tenant_a.key,
    ).json()
    assert portal["url"].startswith(f"{base}/portal/bps_")

    def look(browser: Browser) -> None:
        for viewport in VIEWPORTS:
            tab = _tab(browser, viewport)
            tab.goto(item["url"])
            _house_look(tab, viewport)
            expect(tab.locator(".summary .amount")).to_have_text("$30.00")
            expect(tab.locator(".totals .grand")).to_have_text("Total due today$30.00")
            expect(tab.get_by_role("button")).to_have_text("Pay $30.00")
            tab.screenshot(path=str(shots / f"checkout-paid-{viewport}.png"), full_page=True)

            tab.goto(portal["url"])
            _house_look(tab, viewport)
            expect(tab.locator(".customer")).to_have_text("Signed in as grace@example.com")
            expect(tab.locator(".subscription")).to_contain_text("$30.00/month")
            expect(tab.locator(".subscription .pill")).to_have_text("active")
            # The project's EUR price is in the portal configuration, but a USD subscription cannot switch to it.
            expect(tab.locator(".subscription")).not_to_contain_text("€")
            # Nothing is preselected: the customer picks a plan, each shown with what it costs.
            change = tab.get_by_label("Change plan")
            expect(change).to_have_value("")
            expect(change.locator("option")).to_have_text(["Choose a plan", "Team — $90.00/month"])
            expect(tab.get_by_role("button", name="Switch plan")).to_be_visible()
            expect(tab.locator(".invoices li")).to_contain_text("$30.00")
            tab.screenshot(path=str(shots / f"portal-{viewport}.png"), full_page=True)

            tab.locator(".invoices a").click()
            tab.wait_for_url(invoice["hosted_invoice_url"])
            _house_look(tab, viewport)
            expect(tab.locator(".summary .amount")).to_have_text("$30.00")
            expect(tab.locator(".summary .then .pill")).to_have_text("paid")
            expect(tab.locator(".summary .totals")).to_contain_text("CurrencyUSD")
            expect(tab.locator(".panel .totals .grand")).to_have_text("Amount remaining$0.00")
            expect(tab.get_by_role("link", name="Download invoice (PDF)")).to_have_attribute(
                "href", invoice["invoice_pdf"]
            )
            tab.screenshot(path=str(shots / f"invoice-{viewport}.png"), full_page=True)

    browse(look)


def test_a_taxed_checkout_asks_the_country_and_the_portal_and_invoice_show_the_tax(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, base, browse, shots
):
    body = {"key": "team-monthly", "product": catalog.pro.key, "currency": "usd", "unit_amount": 1900,
            "type": "recurring", "interval": "month", "tax_behavior": "exclusive"}  # fmt: skip
    assert api.post("/api/v1/prices", body, key=tenant_a.key).status_code == 201
    api.post("/api/v1/customers", {"external_id": "user-9", "email": "tax@example.com"}, key=tenant_a.key)
    checkout = api.post(
        "/api/v1/checkout/subscription",
        {"customer": "user-9", "price": "team-monthly", "automatic_tax": True, "success_url": OK,
         "cancel_url": CANCEL},
        key=tenant_a.key,
    ).json()  # fmt: skip

    def pay(browser: Browser) -> None:
        tab = _tab(browser, "desktop")
        tab.goto(checkout["url"])
        expect(tab.locator(".totals")).to_contain_text("TaxCalculated from your address")
        expect(tab.locator("form .note")).to_contain_text("$19.00 plus tax now")
        tab.fill("#country", "DE")
        # The country changes the amounts: the page shows them (nothing is charged yet), then the customer pays.
        tab.get_by_role("button", name="Subscribe").click()
        expect(tab.locator(".notice")).to_contain_text("With your billing country (DE)")
        expect(tab.locator(".totals")).to_contain_text("Tax$3.61")
        expect(tab.locator(".totals .grand")).to_have_text("Total due today$22.61")
        expect(tab.locator("form .note")).to_have_text("You will be charged $22.61 now, then $22.61/month.")
        tab.screenshot(path=str(shots / "checkout-tax-desktop.png"), full_page=True)
        tab.get_by_role("button", name="Subscribe").click()
        tab.wait_for_url(f"{OK}**")

    browse(pay)
    stripe_webhooks.deliver()
    invoice = api.get("/api/v1/invoices?customer=user-9", key=tenant_a.key).json()["data"][0]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (1900, 361, 2261)
    portal = api.post(
        "/api/v1/portal",
        {"customer": "user-9", "return_url": "https://app.example.com/account"},
        key=tenant_a.key,
    ).json()

    def look(browser: Browser) -> None:
        for viewport in VIEWPORTS:
            tab = _tab(browser, viewport)
            tab.goto(portal["url"])
            _house_look(tab, viewport)
            expect(tab.locator(".invoices li")).to_contain_text("$22.61")
            expect(tab.locator(".invoices li .tax")).to_have_text("incl. VAT (19%) $3.61")
            tab.screenshot(path=str(shots / f"portal-tax-{viewport}.png"), full_page=True)
            tab.locator(".invoices a").click()
            tab.wait_for_url(invoice["hosted_invoice_url"])
            _house_look(tab, viewport)
            totals = tab.locator(".panel .totals")
            expect(totals).to_contain_text("Subtotal$19.00")
            expect(totals).to_contain_text("VAT (19%)$3.61")
            expect(totals).to_contain_text("Total$22.61")
            tab.screenshot(path=str(shots / f"invoice-tax-{viewport}.png"), full_page=True)

    browse(look)
