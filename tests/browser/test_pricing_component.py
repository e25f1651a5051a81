"""`<tollgate-pricing>` (core/static/tollgate/pricing.js) in a real browser, on `make demo`'s pricing page: it shows
the demo catalog with its exact prices and feature texts, is usable with the keyboard alone, starts a checkout
through the demo's own backend (which holds the project key; the page never sees it) that ends in a paid
subscription, and says so when the plans cannot be read.

The demo is seeded as `make demo` seeds it, against an emulator served over HTTP (its checkout page must be
reachable by the browser). Faults are real: a proxy in front of Tollgate that answers 503 or is stopped. Screenshots
(desktop and narrow, default and themed) go to $TOLLGATE_SCREENSHOTS, by default var/screenshots/.
"""

import http.server
import io
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connections
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from billing.models import CheckoutSession, Payment, Subscription
from tests.browser.test_operator_journey import CHROMIUM, CHROMIUM_ARGS
from tests.clients.proxy import FlakyProxy
from tests.docs import test_demo_server

runserver = (
    test_demo_server.runserver
)  # the fixture: `make demo`'s server, `manage.py runserver` in its process
SCREENSHOTS = Path(
    os.environ.get("TOLLGATE_SCREENSHOTS") or Path(django_settings.BASE_DIR) / "var" / "screenshots"
)
DESKTOP = {"width": 1280, "height": 1000}
NARROW = {"width": 375, "height": 812}

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"Debian's chromium is not installed at {CHROMIUM}"
    ),
]

# Every tollgate:* event the page's components dispatch, handed to the test (it survives navigations).
EVENT_RECORDER = """
for (const type of ["tollgate:plans-loaded", "tollgate:error", "tollgate:checkout-start", "tollgate:interval-change"]) {
  document.addEventListener(type, (event) => {
    const detail = type === "tollgate:plans-loaded" ? { plans: event.detail.plans.length } : event.detail;
    window.recordTollgateEvent({ type, element: event.target.id, detail });
  });
}
"""

# What a component's shadow DOM shows, card by card: [product, name, amount, period, trial, features, button name].
CARDS = """(id) => [...document.getElementById(id).shadowRoot.querySelectorAll('.plan')].map((card) => ({
  product: card.dataset.product,
  price: card.dataset.price,
  badge: card.querySelector('.badge')?.textContent ?? null,
  name: card.querySelector('.name').textContent,
  level: card.querySelector('.name').tagName,
  price_text: card.querySelector('.price').textContent,
  trial: card.querySelector('.trial')?.textContent ?? null,
  features: [...card.querySelectorAll('.features li')].map((li) => li.textContent),
  button: card.querySelector('.choose').getAttribute('aria-label'),
}))"""

MONTHLY_FEATURES = {
    "starter": [
        "✓AI credits: 100",
        "✓API calls: 50,000",
        "✓AI assistant: 2,000",
        "✓Projects: 5",
        "✓Seats: 1 per unit bought",
        "✕Not included: Single sign-on (SAML)",
        "✓Support: email, response hours 48",
    ],
    "professional": [
        "✓AI credits: 1,000",
        "✓API calls: 500,000, then billed per use",
        "✓AI assistant: 20,000",
        "✓Projects: 50",
        "✓Seats: 1 per unit bought",
        "✓Single sign-on (SAML)",
        "✓Support: priority, response hours 24",
    ],
    "enterprise": [
        "✓AI credits: 10,000",
        "✓API calls: Unlimited",
        "✓AI assistant: Unlimited",
        "✓Projects: Unlimited",
        "✓Seats: 1 per unit bought",
        "✓Single sign-on (SAML)",
        "✓Support: dedicated, response hours 4",
    ],
}


@pytest.fixture
def demo(live_server, emulator_over_http, settings, tmp_path) -> dict[str, Any]:
    """`make demo` against the live server: the demo project, its catalog, and its key in the credentials file the
    demo's backend reads."""
    settings.DEMO_PAGES = True
    settings.DEMO_CREDENTIALS = str(tmp_path / "demo-credentials.json")
    output = io.StringIO()
    call_command(
        "demo_setup",
        "--base-url",
        live_server.url,
        "--wait-for-stripe",
        "--credentials",
        settings.DEMO_CREDENTIALS,
        stdout=output,
    )
    assert f"Pricing page:   {live_server.url}/demo/pricing" in output.getvalue()
    credentials = json.loads(Path(settings.DEMO_CREDENTIALS).read_text())
    return {"url": live_server.url, "secret": credentials["api_key"]}


@pytest.fixture
def browser(live_server, monkeypatch) -> Iterator[Browser]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # see test_operator_journey.page
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
            connections.close_all()


@pytest.fixture
def open_page(browser) -> Callable[..., tuple[Page, list[dict[str, Any]]]]:
    """`open_page(viewport)`: a fresh browser context's page, with the tollgate:* events it records."""

    def open_(viewport: dict[str, int] = DESKTOP, **options: Any) -> tuple[Page, list[dict[str, Any]]]:
        context = browser.new_context(viewport=viewport, locale="en-US", **options)
        page = context.new_page()
        page.set_default_timeout(60_000)
        events: list[dict[str, Any]] = []
        page.expose_function("recordTollgateEvent", lambda event: events.append(event))
        page.add_init_script(EVENT_RECORDER)
        return page, events

    return open_


def _shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _focused(page: Page) -> dict[str, Any] | None:
    """The element focused inside a component's shadow root: its host's id and its own data."""
    return page.evaluate(
        """() => {
            const host = document.activeElement;
            const inner = host && host.shadowRoot && host.shadowRoot.activeElement;
            if (!inner) return null;
            return {host: host.id, role: inner.getAttribute('role'), text: inner.textContent,
                    checked: inner.getAttribute('aria-checked')};
        }"""
    )


def test_the_demo_catalog_renders_with_exact_prices_and_features(demo, open_page):
    page, events = open_page()
    page.goto(f"{demo['url']}/demo/pricing")
    pricing = page.locator("#pricing")
    expect(pricing.locator(".plan")).to_have_count(3)
    cards = page.evaluate(CARDS, "pricing")
    assert cards == [
        {
            "product": "starter",
            "price": "starter-monthly",
            "badge": None,
            "name": "Starter",
            "level": "H2",
            "price_text": "$19.00 per month",
            "trial": "14-day free trial",
            "features": MONTHLY_FEATURES["starter"],
            "button": "Choose Starter, $19.00 per month",
        },
        {
            "product": "professional",
            "price": "pro-monthly",
            "badge": "Most popular",
            "name": "Professional",
            "level": "H2",
            "price_text": "$49.00 per month",
            "trial": None,
            "features": MONTHLY_FEATURES["professional"],
            "button": "Choose Professional, $49.00 per month",
        },
        {
            "product": "enterprise",
            "price": "enterprise-monthly",
            "badge": None,
            "name": "Enterprise",
            "level": "H2",
            "price_text": "$199.00 per month",
            "trial": None,
            "features": MONTHLY_FEATURES["enterprise"],
            "button": "Choose Enterprise, $199.00 per month",
        },
    ]
    # The accessibility tree: a labelled radio group for the interval, buttons named with the plan and its price.
    group = pricing.get_by_role("radiogroup", name="Billing interval")
    expect(group.get_by_role("radio", name="Monthly")).to_have_attribute("aria-checked", "true")
    expect(group.get_by_role("radio", name="Yearly")).to_have_attribute("aria-checked", "false")
    expect(pricing.get_by_role("button", name="Choose Professional, $49.00 per month")).to_have_count(1)
    expect(pricing.get_by_role("heading", name="Professional", level=2)).to_have_count(1)
    # The paywall: only the plans that grant single sign-on, under a line that says so.
    expect(page.locator("#paywall .plan")).to_have_count(2)
    expect(page.locator("#paywall .lead")).to_have_text("Single sign-on (SAML) is available on these plans.")
    paywall = page.evaluate(CARDS, "paywall")
    assert [(card["product"], card["price_text"], card["level"]) for card in paywall] == [
        ("professional", "$49.00 per month", "H3"),
        ("enterprise", "$199.00 per month", "H3"),
    ]
    # Money as the browser formats it: minor units by Stripe's exponents (zero- and three-decimal currencies),
    # exact for the largest amounts, in the locale asked for.
    formatted = page.evaluate(
        """async () => {
            const {formatAmount, minorUnitExponent} = await import('/static/tollgate/pricing.js');
            return [
                formatAmount(1900, 'usd', 'en-US'), formatAmount(500, 'jpy', 'en-US'),
                formatAmount(12500, 'kwd', 'en-US'), formatAmount(5, 'usd', 'en-US'),
                formatAmount(99999999999999, 'usd', 'en-US'), formatAmount(199000, 'eur', 'de-DE'),
                formatAmount(1000, 'huf', 'en-US'), formatAmount(-250, 'usd', 'en-US'),
                [minorUnitExponent('JPY'), minorUnitExponent('bhd'), minorUnitExponent('usd')],
            ];
        }"""
    )
    assert formatted == [
        "$19.00",
        "¥500",
        "KWD\u00a012.500",
        "$0.05",
        "$999,999,999,999.99",
        "1.990,00\u00a0€",
        "HUF\u00a010.00",
        "-$2.50",
        [0, 3, 2],
    ]
    # Usage windows in a plan's features, and a refused check's binding window or period on the paywall.
    texts = page.evaluate(
        """async () => {
            const {featureText, bindingText, waitText, accountCapText} = await import('/static/tollgate/pricing.js');
            const calls = {name: 'API calls', type: 'metered',
                           value: {limit: 100000, windows: {minute: 100, day: 5000}}};
            const summaries = {name: 'Summaries', type: 'metered',
                               value: {limit: 2000, per_entity: {feature: 'seats', limit: 50}}};
            const daily = {name: 'Summaries', type: 'metered',
                           value: {limit: 2000, per_entity: {feature: 'seats', limit: 50,
                                                             windows: {minute: 3, day: 10}}}};
            const seatCredits = {name: 'AI credits', type: 'credits',
                                 value: {limit: 100, per_entity: {feature: 'seats', on_remove: 'forfeit'}}};
            const perSeat = {name: 'AI credits', type: 'credits',
                             value: {limit: 1000, per_entity: {feature: 'seats', on_remove: 'return', credits: 50}}};
            return [
                featureText(calls, 'en-US'), featureText(summaries, 'en-US'), featureText(daily, 'en-US'),
                featureText(seatCredits, 'en-US'), featureText(perSeat, 'en-US'),
                bindingText('Summaries', 'entity', 86400),
                bindingText('Summaries', 'entity', 3600, 'day'), bindingText('Summaries', 'entity', 60, 'period'),
                bindingText('API calls', 'minute', 40), bindingText('API calls', 'period', 3 * 86400),
                bindingText('API calls', 'day', null), bindingText('API calls', 'cap', 600),
                bindingText('API calls', 'account_cap', 3 * 86400),
                [waitText(1), waitText(89), waitText(90), waitText(5399), waitText(7200), waitText(200000)],
                accountCapText({amount: 50000, currency: 'usd', at_cap: 'block'}, 'per month', 'en-US'),
                accountCapText({amount: 7500, currency: 'eur', at_cap: 'alert'}, 'per year', 'en-US'),
                accountCapText(null, 'per month', 'en-US'),
            ];
        }"""
    )
    assert texts == [
        "API calls: 100,000, at most 100 a minute, 5,000 a day",
        "Summaries: 2,000, 50 for each of your seats",
        "Summaries: 2,000, 50 for each of your seats (at most 3 a minute, 10 a day)",
        "AI credits: 100; each of your seats may hold its own (forfeited when removed)",
        "AI credits: 1,000; 50 for each of your seats, its own (returned to you when removed)",
        "You have used your share of this period's Summaries. It frees up in 24 hours. These plans give more.",
        "You have used your share of the Summaries you may use in one day. It frees up in 60 minutes. These plans give "
        "more.",
        "You have used your share of this period's Summaries. It frees up in 60 seconds. These plans give more.",
        "You have reached the API calls you may use in one minute. It frees up in 40 seconds. These plans give more.",
        "You have used this period's API calls. It frees up in 3 days. These plans give more.",
        "You have reached the API calls you may use in one day. These plans give more.",
        "You have reached the spending cap on API calls. It frees up in 10 minutes. These plans give more.",
        "You have reached your account's spending cap. It frees up in 3 days. These plans give more.",
        ["1 second", "89 seconds", "2 minutes", "90 minutes", "2 hours", "2 days"],
        "Usage billed up to $500.00 per month",
        "An alert at €75.00 of usage per year",
        None,
    ]
    page.evaluate(
        """() => {
            const paywall = document.getElementById('paywall');
            paywall.setAttribute('retry-after', '40');
            paywall.setAttribute('binding', 'minute');
        }"""
    )
    expect(page.locator("#paywall .lead")).to_have_text(
        "You have reached the Single sign-on (SAML) you may use in one minute. It frees up in 40 seconds. "
        "These plans give more."
    )
    _shoot(page, "paywall-binding-window")
    page.evaluate(
        """() => {
            const paywall = document.getElementById('paywall');
            paywall.setAttribute('retry-after', '90000');
            paywall.setAttribute('binding', 'entity');
        }"""
    )
    expect(page.locator("#paywall .lead")).to_have_text(
        "You have used your share of this period's Single sign-on (SAML). It frees up in 25 hours. "
        "These plans give more."
    )
    _shoot(page, "paywall-binding-entity")
    page.evaluate(
        """() => {
            const paywall = document.getElementById('paywall');
            paywall.setAttribute('retry-after', '3600');
            paywall.setAttribute('entity-binding', 'day');
        }"""
    )
    expect(page.locator("#paywall .lead")).to_have_text(
        "You have used your share of the Single sign-on (SAML) you may use in one day. It frees up in 60 minutes. "
        "These plans give more."
    )
    _shoot(page, "paywall-binding-entity-window")
    page.evaluate(
        """() => {
            const paywall = document.getElementById('paywall');
            paywall.removeAttribute('entity-binding');
            paywall.removeAttribute('binding');
        }"""
    )
    expect(page.locator("#paywall .lead")).to_have_text("Single sign-on (SAML) is available on these plans.")
    assert page.locator("#pricing .status").text_content() == ""
    assert page.locator("#pricing .alert").text_content() == ""
    _shoot(page, "pricing-desktop-monthly")

    group.get_by_role("radio", name="Yearly").click()
    yearly = page.evaluate(CARDS, "pricing")
    assert [(card["price"], card["price_text"], card["trial"]) for card in yearly] == [
        ("starter-yearly", "$190.00 per year", "14-day free trial"),
        ("pro-yearly", "$490.00 per year", None),
        ("enterprise-yearly", "$1,990.00 per year", None),
    ]
    assert [card["features"] for card in yearly] == list(MONTHLY_FEATURES.values())
    assert sorted((event["type"], event["element"]) for event in events) == [
        ("tollgate:interval-change", "pricing"),
        ("tollgate:plans-loaded", "paywall"),
        ("tollgate:plans-loaded", "pricing"),
    ]
    assert events[-1] == {
        "type": "tollgate:interval-change",
        "element": "pricing",
        "detail": {"interval": "year:1"},
    }
    _shoot(page, "pricing-desktop-yearly")

    narrow, _ = open_page(NARROW)
    narrow.goto(f"{demo['url']}/demo/pricing")
    expect(narrow.locator("#pricing .plan")).to_have_count(3)
    widths = narrow.evaluate(
        "() => ({page: document.documentElement.scrollWidth, view: window.innerWidth,"
        " cards: [...document.getElementById('pricing').shadowRoot.querySelectorAll('.plan')]"
        ".map((c) => Math.round(c.getBoundingClientRect().left))})"
    )
    # One column: every card starts at the same left edge, and nothing is wider than the screen.
    assert (widths["page"] <= widths["view"], len(set(widths["cards"]))) == (True, 1)
    _shoot(narrow, "pricing-narrow")

    for viewport, name in ((DESKTOP, "pricing-themed-desktop"), (NARROW, "pricing-themed-narrow")):
        themed, _ = open_page(viewport, color_scheme="dark")
        themed.goto(f"{demo['url']}/demo/pricing?theme=dark")
        expect(themed.locator("#pricing .plan")).to_have_count(3)
        styles = themed.evaluate(
            """() => {
                const root = document.getElementById('pricing').shadowRoot;
                const card = getComputedStyle(root.querySelector('.plan'));
                const badge = getComputedStyle(root.querySelector('.badge'));
                return {card: card.backgroundColor, radius: card.borderTopLeftRadius,
                        font: card.fontFamily, badge: badge.backgroundColor};
            }"""
        )
        assert styles == {
            "card": "rgb(31, 41, 55)",
            "radius": "4px",
            "font": 'Georgia, "Times New Roman", serif',
            "badge": "rgb(245, 158, 11)",
        }
        _shoot(themed, name)


def test_keyboard_only_a_checkout_from_the_table_ends_in_a_paid_subscription(
    demo, open_page, stripe_emulator, emulator_over_http
):
    page, events = open_page()
    requests: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda request: requests.append(
            {"url": request.url, "headers": request.headers, "body": request.post_data or ""}
        ),
    )
    page.goto(f"{demo['url']}/demo/pricing")
    expect(page.locator("#pricing .plan")).to_have_count(3)
    customer = page.locator("[data-field=customer]").text_content()
    assert re.fullmatch(r"demo-visitor-[a-z0-9]{10}", customer or "")

    page.keyboard.press("Tab")  # the first thing to focus on the page: the checked interval
    assert _focused(page) == {"host": "pricing", "role": "radio", "text": "Monthly", "checked": "true"}
    page.keyboard.press("ArrowRight")
    assert _focused(page) == {"host": "pricing", "role": "radio", "text": "Yearly", "checked": "true"}
    expect(page.locator("#pricing .plan[data-product=professional] .price")).to_have_text("$490.00 per year")
    page.keyboard.press("ArrowRight")  # wraps around
    assert _focused(page) == {"host": "pricing", "role": "radio", "text": "Monthly", "checked": "true"}
    page.keyboard.press("ArrowLeft")
    assert _focused(page) == {"host": "pricing", "role": "radio", "text": "Yearly", "checked": "true"}
    # Focus is visible: the focused radio draws an outline.
    outline = page.evaluate(
        "() => getComputedStyle(document.getElementById('pricing').shadowRoot.activeElement).outlineStyle"
    )
    assert outline == "solid"
    page.keyboard.press("Tab")  # past the unchecked radio (one tab stop per group) to the first plan
    assert _focused(page) == {"host": "pricing", "role": None, "text": "Choose Starter", "checked": None}
    page.keyboard.press("Tab")
    assert _focused(page) == {"host": "pricing", "role": None, "text": "Choose Professional", "checked": None}
    _shoot(page, "pricing-keyboard-focus")
    # The source of the page and of its component, and what the component rendered, carry no key.
    page_text = page.content() + page.evaluate(
        "() => document.getElementById('pricing').shadowRoot.innerHTML"
    )

    # The backend's answer, read on its way to the page (the page leaves at once, and its body with it). The handler
    # runs on Playwright's dispatcher, where an exception never reaches the test (the request it holds would just
    # hang): it is kept, and the page is answered with it, so that the test fails at once and says why.
    checkout = re.compile(r"/demo/pricing/checkout$")
    answers: list[tuple[int, Any]] = []
    handler_errors: list[str] = []

    def read_through(route: Route) -> None:
        try:
            response = route.fetch()
            answers.append((response.status, response.json()))
        except Exception as error:
            handler_errors.append(repr(error))
            route.fulfill(status=599, json={"error": {"message": repr(error)}})
            return
        route.fulfill(response=response)

    page.route(checkout, read_through)
    # The checkout's answer reaching the page: the handler has read it by then (it answers the page last).
    with page.expect_response(checkout) as delivered:
        page.keyboard.press("Enter")
    assert handler_errors == []
    assert [answer_status for answer_status, _ in answers] == [delivered.value.status]
    page.wait_for_url(re.compile(re.escape(emulator_over_http)))
    [(status, checkout_answer)] = answers
    assert (status, list(checkout_answer)) == (200, ["url"])
    assert page.url == checkout_answer["url"]
    assert checkout_answer["url"].startswith(f"{emulator_over_http}/")

    started_events = [event for event in events if event["type"] == "tollgate:checkout-start"]
    assert started_events == [
        {
            "type": "tollgate:checkout-start",
            "element": "pricing",
            "detail": {
                "price": "pro-yearly",
                "product": "professional",
                "currency": "usd",
                "interval": "year",
                "interval_count": 1,
                "customer": None,
            },
        }
    ]
    posted = [request for request in requests if request["url"].endswith("/demo/pricing/checkout")]
    assert len(posted) == 1
    assert json.loads(posted[0]["body"]) == {"price": "pro-yearly"}
    assert posted[0]["headers"]["content-type"] == "application/json"

    page.fill("input[name=email]", "visitor@example.com")
    page.fill("input[name=card]", "4242 4242 4242 4242")
    page.get_by_role("button", name=re.compile(r"^(Pay|Subscribe)")).click()
    page.wait_for_url(re.compile(r"/demo/return\?session_id=cs_"))
    expect(page.locator("[data-field=payment-status]")).to_have_text("succeeded")
    expect(page.locator("[data-outcome]")).to_have_attribute("data-outcome", "waiting")  # for the webhook
    # The page reloads itself while it waits; on SQLite (one shared in-memory database) a reload that reads while
    # the webhook's handler writes finds the table locked, so the browser steps away while Stripe's events land.
    return_url = page.url
    page.goto("about:blank")
    stripe_emulator.flush_webhooks()
    page.goto(return_url)
    expect(page.locator("[data-field=subscription-status]")).to_have_text("active")
    expect(page.locator("[data-outcome]")).to_have_text(
        f"Paid $490.00: {customer} is subscribed to Professional."
    )

    session = CheckoutSession.objects.get()
    payment = Payment.objects.get()
    subscription = Subscription.objects.get()
    assert (
        session.customer.external_id,
        session.url,
        payment.status,
        payment.amount,
        payment.currency,
        subscription.status,
        subscription.price.key,
        subscription.customer.external_id,
    ) == (customer, checkout_answer["url"], "succeeded", 49000, "usd", "active", "pro-yearly", customer)

    # Nothing the browser sent or was sent carried the project's secret key, nor any key of its kind.
    page_text += page.content()
    seen = json.dumps(requests) + json.dumps(checkout_answer) + page_text
    assert (demo["secret"] in seen, "tg_sk_" in seen) == (False, False)


def test_the_table_says_when_the_plans_cannot_be_read_and_recovers(demo, open_page):
    page, events = open_page()
    page.goto(f"{demo['url']}/demo/pricing")
    expect(page.locator("#pricing .plan")).to_have_count(3)
    proxy = FlakyProxy(upstream=demo["url"]).start()
    try:
        # Through a proxy on another origin (the public endpoint answers any origin), slowed down: the loading
        # state is announced while the answer is on its way.
        proxy.fail("GET", forward=True, delay=1.5)
        page.evaluate(f"() => document.getElementById('pricing').setAttribute('api-base', '{proxy.url}')")
        expect(page.locator("#pricing [role=status]")).to_have_text("Loading plans…")
        expect(page.locator("#pricing [part=body]")).to_have_attribute("aria-busy", "true")
        expect(page.locator("#pricing .plan")).to_have_count(3)
        expect(page.locator("#pricing [role=status]")).to_have_text("")
        assert [seen.path for seen in proxy.requests("GET")] == ["/api/v1/public/demo/plans"]

        # The proxy answers 503 without CORS headers, as a failing gateway does: the browser sees a network error.
        proxy.fail("GET", status=503)
        page.evaluate("() => document.getElementById('pricing').reload()")
        alert = page.locator("#pricing [role=alert]")
        expect(alert).to_have_text("The plans could not be loaded.Try again")
        assert page.locator("#pricing .plan").count() == 0
        _shoot(page, "pricing-error")
        errors = [event for event in events if event["type"] == "tollgate:error"]
        assert errors == [
            {
                "type": "tollgate:error",
                "element": "pricing",
                "detail": {"stage": "plans", "status": None, "message": "Failed to fetch"},
            }
        ]

        # "Try again", with the keyboard: the proxy answers again.
        page.locator("#pricing .retry").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#pricing .plan")).to_have_count(3)
        expect(alert).to_have_text("")
        # The focused button went away with the alert: focus moves to the interval the table now shows.
        assert _focused(page) == {"host": "pricing", "role": "radio", "text": "Monthly", "checked": "true"}
    finally:
        proxy.stop()

    # The proxy stopped: nothing listens there any more.
    page.evaluate("() => document.getElementById('pricing').reload()")
    expect(page.locator("#pricing [role=alert]")).to_have_text("The plans could not be loaded.Try again")
    # A project Tollgate does not know: its 404, with the API's message, reaches the app's error listener.
    page.evaluate(
        """() => {
            const element = document.getElementById('pricing');
            element.removeAttribute('api-base');
            element.setAttribute('project', 'no-such-project');
        }"""
    )
    expect(page.locator("#pricing [role=alert]")).to_have_text("The plans could not be loaded.Try again")
    assert [event["detail"] for event in events if event["type"] == "tollgate:error"][-1] == {
        "stage": "plans",
        "status": 404,
        "message": "No such project: 'no-such-project'.",
    }


def test_a_checkout_the_backend_refuses_is_announced_and_nothing_is_created(demo, open_page):
    page, events = open_page()
    page.goto(f"{demo['url']}/demo/pricing")
    expect(page.locator("#pricing .plan")).to_have_count(3)
    # Without the page's CSRF token the demo's backend refuses (it acts for the session's user).
    page.evaluate("() => { document.getElementById('pricing').checkoutHeaders = {}; }")
    with page.expect_response(re.compile(r"/demo/pricing/checkout$")) as refused:
        page.locator("#pricing").get_by_role("button", name="Choose Enterprise, $199.00 per month").click()
    assert refused.value.status == 403
    alert = page.locator("#pricing [role=alert]")
    expect(alert).to_have_text("The checkout for Enterprise could not be started. Please try again.")
    assert [event["detail"] for event in events if event["type"] == "tollgate:error"] == [
        {"stage": "checkout", "status": 403, "message": "CSRF verification failed."}
    ]
    expect(page.locator("#pricing .plan[data-product=enterprise] .choose")).not_to_have_attribute(
        "aria-disabled", "true"
    )
    assert page.url == f"{demo['url']}/demo/pricing"
    assert (CheckoutSession.objects.count(), Payment.objects.count()) == (0, 0)

    # An app that starts checkouts itself cancels the event: nothing is posted.
    page.evaluate(
        """() => document.addEventListener('tollgate:checkout-start', (event) => event.preventDefault())"""
    )
    posted: list[str] = []
    page.on("request", lambda request: posted.append(request.url) if request.method == "POST" else None)
    page.locator("#pricing").get_by_role("button", name="Choose Starter, $19.00 per month").click()
    assert [event["detail"]["price"] for event in events if event["type"] == "tollgate:checkout-start"] == [
        "enterprise-monthly",
        "starter-monthly",
    ]
    page.wait_for_timeout(300)
    assert (posted, CheckoutSession.objects.count()) == ([], 0)


# A shop's page on its own origin, embedding the table as docs/integration.md shows: the module from Tollgate.
THIRD_PARTY_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A shop's pricing</title>
<script type="module" src="{module}"></script></head>
<body><main style="max-width: 1040px; margin: 32px auto; font: 15px system-ui, sans-serif">
<h1>Our plans</h1>
<tollgate-pricing id="pricing" project="demo" api-base="{api}" highlight="professional"
                  highlight-label="Most popular"></tollgate-pricing>
</main></body></html>"""


@pytest.fixture
def third_party_page() -> Iterator[Callable[[str], str]]:
    """`third_party_page(html)`: the URL of a page with that HTML, served on an origin of its own."""
    pages: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages[-1]
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def serve(html: str) -> str:
        pages.append(html.encode())
        return f"http://localhost:{server.server_port}/shop/pricing"

    try:
        yield serve
    finally:
        server.shutdown()
        server.server_close()


def test_a_third_party_page_embeds_the_table_from_make_demos_server(
    demo, open_page, runserver, third_party_page
):
    """The module from `make demo`'s own server (`manage.py runserver`, static files as production serves them) on
    another origin's page: a module script is a CORS request, which runserver's static handler refused (no
    Access-Control-Allow-Origin), so the table stayed empty. The plans come from the test's server (`api-base`)."""
    url = third_party_page(
        THIRD_PARTY_PAGE.format(module=f"http://{runserver}/static/tollgate/pricing.js", api=demo["url"])
    )
    page, events = open_page()
    module_answers: list[tuple[int, str | None]] = []
    page.on(
        "response",
        lambda response: (
            module_answers.append((response.status, response.headers.get("access-control-allow-origin")))
            if response.url.endswith("/static/tollgate/pricing.js")
            else None
        ),
    )
    page.goto(url)
    expect(page.locator("#pricing .plan")).to_have_count(3)
    cards = page.evaluate(CARDS, "pricing")
    assert [(card["product"], card["price_text"], card["badge"]) for card in cards] == [
        ("starter", "$19.00 per month", None),
        ("professional", "$49.00 per month", "Most popular"),
        ("enterprise", "$199.00 per month", None),
    ]
    assert module_answers == [(200, "*")]
    assert [(event["type"], event["detail"]) for event in events] == [("tollgate:plans-loaded", {"plans": 3})]
    _shoot(page, "pricing-third-party-page")
