"""An operator who has never seen Tollgate, in a real browser: logs in, finds a customer, sees why the customer
cannot use a feature, fixes it with an audited grant, refunds a payment, and finds both in the audit log.

Playwright (sync API) drives Debian's `chromium` against pytest-django's `live_server`; the in-process Stripe
emulator is installed process-wide (tests/conftest.py), so the refund made in the server's thread reaches it.
"""

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.db import connections
from django.utils import timezone
from playwright.sync_api import Page, expect, sync_playwright

from billing.models import Payment
from core.models import AuditLogEntry
from core.roles import roles_sync
from entitlements.models import Grant
from tests.entitlements.helpers import check, customer, feature, product, subscribe

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the server's thread reads committed rows only
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"Debian's chromium is not installed at {CHROMIUM} (`apt-get install -y chromium`; .ci/run does it)",
    ),
]


@pytest.fixture
def page(live_server, monkeypatch) -> Iterator[Page]:
    # Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a thread with a
    # running loop unless told that this (test-only) use is deliberate.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(base_url=live_server.url)
            tab.set_default_timeout(60_000)
            yield tab
        finally:
            browser.close()
            # ORM calls made while Playwright's loop runs open a connection of their own (Django keeps them per
            # context): close it, or the test database cannot be dropped at the end of the session.
            connections.close_all()


def _paid_payment(api, tenant, stripe_sdk) -> Payment:
    created = api.post(
        "/api/v1/payments",
        {"customer": "user-1", "price": "credits-1000", "quantity": 2, "flow": "intent"},
        key=tenant.key,
    ).json()
    stripe_sdk().v1.payment_intents.confirm(
        created["stripe_payment_intent_id"], {"payment_method": "pm_card_visa"}
    )
    api.get(f"/api/v1/payments/{created['id']}", key=tenant.key)  # settles it
    return Payment.objects.get(pk=created["id"])


def test_an_operator_explains_grants_refunds_and_sees_the_audit_log(page, api, tenant_a, catalog, stripe_sdk):
    roles_sync(apps)  # a transactional test before this one flushed the groups the migration made
    operator = User.objects.create_user("ops-anna", password="correct horse battery", is_staff=True)
    operator.groups.add(Group.objects.get(name="finance"))
    payment = _paid_payment(api, tenant_a, stripe_sdk)
    reports = feature(tenant_a.project, "reports")
    team = product(tenant_a.project, "team", {reports: True})
    subscribe(
        customer(tenant_a.project, "user-1"),
        team,
        status="canceled",
        start=timezone.now() - timedelta(days=60),
        canceled_at=timezone.now() - timedelta(days=20),
    )
    assert check(api, tenant_a.key, "user-1", "reports")["allowed"] is False

    # log in
    page.goto("/admin/")
    page.fill("#id_username", "ops-anna")
    page.fill("#id_password", "correct horse battery")
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text("ops-anna")

    # find the customer
    page.goto("/admin/customers/customer/")
    page.fill("#searchbar", "user-1")
    page.press("#searchbar", "Enter")
    page.click("#result_list th.field-external_id a:text-is('user-1')")
    page.click("text=Explain entitlements")

    # why can't user-1 use reports?
    reports_box = page.locator("[data-feature=reports]")
    expect(reports_box).to_have_attribute("data-allowed", "false")
    expect(reports_box.locator(".tg-verdict")).to_have_text(
        "Not allowed: nothing gives this feature now (see why below)."
    )
    expect(reports_box.locator("tr[data-kind=subscription][data-effect=none]")).to_contain_text("canceled")

    # fix it: an audited grant with an expiry
    reports_box.locator("a.button", has_text="Grant reports").click()
    expect(page.locator("select[name=feature]")).to_have_value("reports")
    page.fill("input[name=expires_at]", "2031-01-02T03:04")
    page.fill("textarea[name=reason]", "ticket 42: renewal paid by wire")
    page.click("input[name=apply]")
    expect(page.locator("ul.messagelist")).to_contain_text("user-1: granted reports")
    reports_box = page.locator("[data-feature=reports]")
    expect(reports_box).to_have_attribute("data-allowed", "true")
    expect(reports_box.locator("tr[data-kind=grant][data-effect=gives]")).to_contain_text(
        "ticket 42: renewal paid by wire (until 2031-01-02 03:04 UTC)"
    )

    # refund part of the customer's payment
    page.goto("/admin/billing/payment/")
    page.fill("#searchbar", "user-1")
    page.press("#searchbar", "Enter")
    page.check(f"input[name=_selected_action][value={payment.pk}]")
    page.select_option("select[name=action]", "refund")
    page.click("button[name=index]")
    page.fill("input[name=amount]", "10.00")  # $10.00, as the payment page shows money
    page.fill("textarea[name=reason]", "customer asked")
    page.click("input[name=apply]")
    expect(page.locator("ul.messagelist")).to_contain_text(f"{payment.pk}: refunded $10.00 of $30.00")

    # and both are in the audit log, with the operator and the reasons
    page.goto("/admin/")
    page.click("text=Audit log")
    rows = page.locator("#result_list tbody tr")
    grant_row = rows.filter(has_text="entitlement_grant.created")
    expect(grant_row).to_contain_text("ops-anna")
    expect(grant_row).to_contain_text("ticket 42: renewal paid by wire")
    refund_row = rows.filter(has_text="payment.refund_requested")
    expect(refund_row).to_contain_text("ops-anna")
    expect(refund_row).to_contain_text("customer asked")

    # what the browser showed is what happened
    grant = Grant.objects.get()
    assert (grant.customer.external_id, grant.feature.key, grant.value, grant.expires_at, grant.reason) == (
        "user-1",
        "reports",
        True,
        datetime(2031, 1, 2, 3, 4, tzinfo=UTC),
        "ticket 42: renewal paid by wire",
    )
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == ("partially_refunded", 1000)
    assert sorted(
        AuditLogEntry.objects.filter(actor_type="user").values_list("action", "actor_repr", "reason")
    ) == [
        ("entitlement_grant.created", "ops-anna", "ticket 42: renewal paid by wire"),
        ("payment.refund_requested", "ops-anna", "customer asked"),
    ]
    assert check(api, tenant_a.key, "user-1", "reports")["allowed"] is True
    assert re.search(r"/admin/core/auditlogentry/", page.url)


@pytest.fixture
def midday() -> Iterator[None]:
    """The server's clock at noon UTC today, ticking: a day's window and a minute's never end at the same instant
    (in a day's last minute both end at midnight, and the explain names the shorter one)."""
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    with time_machine.travel(noon, tick=True):
        yield


def test_an_operator_sees_the_window_that_refuses_and_sets_a_customers_spend_cap(
    page, api, tenant_a, tmp_path, midday
):
    """Billing controls in the back office: the explain page names the usage window that refuses the next use and
    when it frees up; the customer list's "Set a spend cap" sets the customer's own cap, audited, and the answer
    follows it."""
    roles_sync(apps)
    operator = User.objects.create_user("ops-ben", password="correct horse battery", is_staff=True)
    operator.groups.add(Group.objects.get(name="finance"))
    calls = feature(tenant_a.project, "api_calls", "metered")
    # The day's window refuses (a minute's could pass while the page loads).
    value = {"limit": 100, "overage": "allowed", "cap": {"units": 20}, "windows": {"minute": 3, "day": 3}}
    subscribe(customer(tenant_a.project, "user-1"), product(tenant_a.project, "pro", {calls: value}))
    for n in range(3):
        body = {"id": f"c{n}", "customer": "user-1", "feature": "api_calls"}
        assert api.post("/api/v1/entitlements/consume", body, key=tenant_a.key).json()["allowed"] is True

    page.goto("/admin/")
    page.fill("#id_username", "ops-ben")
    page.fill("#id_password", "correct horse battery")
    page.click("input[type=submit]")
    page.goto("/admin/customers/customer/")
    page.click("#result_list th.field-external_id a:text-is('user-1')")
    page.click("text=Explain entitlements")
    calls_box = page.locator("[data-feature=api_calls]")
    expect(calls_box).to_have_attribute("data-allowed", "false")
    expect(calls_box.locator(".tg-verdict")).to_contain_text(
        "Not allowed: the day's window is used up (3 of 3"
    )
    expect(calls_box.locator(".tg-verdict")).to_contain_text(" this minute, 3 of 3 this day.")
    shots = Path(os.environ.get("TOLLGATE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "explain-usage-window.png"), full_page=True)

    page.goto("/admin/customers/customer/")
    page.check("#result_list input[name=_selected_action]")
    page.select_option("select[name=action]", "set_spend_cap")
    page.click("button[name=index]")
    page.select_option("select[name=feature]", "api_calls")
    page.fill("input[name=cap]", '{"units": 500, "at_cap": "alert"}')
    page.fill("textarea[name=reason]", "ticket 77: launch week")
    page.screenshot(path=str(shots / "set-spend-cap.png"), full_page=True)
    page.click("input[name=apply]")
    expect(page.locator("ul.messagelist")).to_contain_text("user-1: spend cap on api_calls set")
    answer = check(api, tenant_a.key, "user-1", "api_calls", quantity=0)
    assert (answer["cap"]["set_by"], answer["cap"]["units"], answer["cap"]["at_cap"]) == (
        "customer",
        500,
        "alert",
    )
    entry = AuditLogEntry.objects.get(action="spend_cap.set")
    assert (entry.reason, entry.actor_id) == ("ticket 77: launch week", str(operator.pk))
    page.goto("/admin/entitlements/spendcap/")
    expect(page.locator("#result_list")).to_contain_text("user-1")


def test_an_operator_pays_use_past_the_limit_with_credits_and_explain_says_so(page, api, tenant_a, tmp_path):
    """The credits waterfall in the back office: the product feature value's "then credits" field names the
    credits feature that pays past the limit (as the products API takes it), and the explain page says what the
    credits pay for and where the next unit comes from."""
    from catalog.models import ProductFeature

    User.objects.create_superuser("ops-cat", password="correct horse battery")
    summaries = feature(tenant_a.project, "summaries", "metered")
    feature(tenant_a.project, "ai_credits", "credits")
    subscribe(customer(tenant_a.project, "user-1"), product(tenant_a.project, "pro", {summaries: 3}))
    grant = {"customer": "user-1", "feature": "ai_credits", "value": 5, "reason": "trial top-up"}
    assert api.post("/api/v1/entitlements/grants", grant, key=tenant_a.key).status_code == 201

    page.goto("/admin/")
    page.fill("#id_username", "ops-cat")
    page.fill("#id_password", "correct horse battery")
    page.click("input[type=submit]")
    value = ProductFeature.objects.get(feature=summaries)
    page.goto(f"/admin/catalog/productfeature/{value.pk}/change/")
    page.fill("textarea[name=credits]", '{"feature": "ai_credits", "cost": 2}')
    shots = Path(os.environ.get("TOLLGATE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "product-feature-then-credits.png"), full_page=True)
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_be_visible()
    plan = api.get("/api/v1/products/pro", key=tenant_a.key).json()
    assert plan["features"]["summaries"] == {"limit": 3, "credits": {"feature": "ai_credits", "cost": 2}}
    body = {"id": "s1", "customer": "user-1", "feature": "summaries", "quantity": 4}
    assert api.post("/api/v1/entitlements/consume", body, key=tenant_a.key).json()["allowed"] is True

    page.goto("/admin/customers/customer/")
    page.click("#result_list th.field-external_id a:text-is('user-1')")
    page.click("text=Explain entitlements")
    box = page.locator("[data-feature=summaries]")
    expect(box).to_have_attribute("data-allowed", "true")
    expect(box.locator(".tg-verdict")).to_contain_text(
        "Past the limit ai_credits pays, 2 credits a unit: 3 left, for 1 more unit (1 paid with credits this "
        "period). The next unit comes from credits."
    )
    page.screenshot(path=str(shots / "explain-credits-waterfall.png"), full_page=True)


def test_an_operator_sets_an_account_cap_and_explain_names_it_when_it_refuses(
    page, api, tenant_a, tmp_path, stripe_emulator
):
    """The account cap in the back office: "Set a spend cap" with "All metered features" sets the customer's cap
    across their metered prices, audited; the spend caps list says what it bounds; once calls and tokens bill it
    whole, the explain page says the account cap refuses the next call and how much it has billed."""
    from tests.entitlements.test_account_caps import billed_plan

    User.objects.create_superuser("ops-dan", password="correct horse battery")
    billed_plan(tenant_a.project, "user-1")
    page.goto("/admin/")
    page.fill("#id_username", "ops-dan")
    page.fill("#id_password", "correct horse battery")
    page.click("input[type=submit]")
    page.goto("/admin/customers/customer/")
    page.check("#result_list input[name=_selected_action]")
    page.select_option("select[name=action]", "set_spend_cap")
    page.click("button[name=index]")
    page.select_option("select[name=feature]", "")
    page.fill("input[name=cap]", '{"amount": 30, "currency": "usd"}')
    page.fill("textarea[name=reason]", "ticket 81: trial account")
    shots = Path(os.environ.get("TOLLGATE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "set-account-cap.png"), full_page=True)
    page.click("input[name=apply]")
    expect(page.locator("ul.messagelist")).to_contain_text("user-1: account cap set")
    entry = AuditLogEntry.objects.get(action="spend_cap.set")
    assert (entry.reason, entry.after["feature"], entry.after["cap"]) == (
        "ticket 81: trial account",
        None,
        {"amount": 30, "currency": "usd", "at_cap": "block"},
    )
    page.goto("/admin/entitlements/spendcap/")
    expect(page.locator("#result_list")).to_contain_text("all metered features (account cap)")

    for event_id, key, quantity in (("c1", "api_calls", 110), ("t1", "tokens", 1010)):
        body = {"id": event_id, "customer": "user-1", "feature": key, "quantity": quantity}
        assert api.post("/api/v1/entitlements/consume", body, key=tenant_a.key).json()["allowed"] is True
    page.goto("/admin/customers/customer/")
    page.click("#result_list th.field-external_id a:text-is('user-1')")
    page.click("text=Explain entitlements")
    calls_box = page.locator("[data-feature=api_calls]")
    expect(calls_box).to_have_attribute("data-allowed", "false")
    expect(calls_box.locator(".tg-verdict")).to_contain_text(
        "Not allowed: the account cap is reached (110 used;"
    )
    expect(calls_box.locator(".tg-verdict")).to_contain_text(
        "Account cap (the customer's, blocks at it): $0.30 of $0.30 billed across the customer's metered features this period."
    )
    page.screenshot(path=str(shots / "explain-account-cap.png"), full_page=True)


def test_an_operator_sets_a_plans_account_cap_and_a_malformed_one_is_refused(page, api, tenant_a, tmp_path):
    """The product's page takes the plan's account cap as the products API does: a malformed one is refused with
    the API's words and nothing is stored; a good one is stored normalised, audited with the operator, and its
    customers' answers carry it (`set_by: "plan"`)."""
    User.objects.create_superuser("ops-cap", password="correct horse battery")
    tokens = feature(tenant_a.project, "tokens", "metered")
    plan = product(tenant_a.project, "pro", {tokens: {"limit": 100, "overage": "allowed"}})
    page.goto("/admin/")
    page.fill("#id_username", "ops-cap")
    page.fill("#id_password", "correct horse battery")
    page.click("input[type=submit]")
    page.goto(f"/admin/catalog/product/{plan.pk}/change/")
    page.fill("textarea[name=account_cap]", '{"amount": 5000}')
    page.click("input[name=_save]")
    expect(page.locator(".errorlist")).to_contain_text("an account cap is")
    plan.refresh_from_db()
    assert plan.account_cap is None
    page.fill("textarea[name=account_cap]", '{"amount": 5000, "currency": "USD", "at_cap": "alert"}')
    shots = Path(os.environ.get("TOLLGATE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "product-account-cap.png"), full_page=True)
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_be_visible()
    plan.refresh_from_db()
    assert plan.account_cap == {"amount": 5000, "currency": "usd", "at_cap": "alert"}
    audit = AuditLogEntry.objects.filter(action="product.updated").latest("created_at")
    assert (audit.actor_repr, audit.after["account_cap"]) == ("ops-cap", plan.account_cap)
    subscribe(customer(tenant_a.project, "user-1"), plan)
    answer = check(api, tenant_a.key, "user-1", "tokens")["account_cap"]
    assert (answer["set_by"], answer["amount"], answer["at_cap"]) == ("plan", 5000, "alert")


def test_an_operator_grants_a_seat_its_own_credits_and_explain_says_whose_they_are(
    page, api, tenant_a, tmp_path
):
    """Credits of a seat's own in the back office: the grant form takes the entity, the grant is the seat's (the
    account's balance stays 0), and the explain page says the seat's balance and that the lot gives the account
    nothing."""
    User.objects.create_superuser("ops-seat", password="correct horse battery")
    seats = feature(tenant_a.project, "seats", "allocation")
    credits = feature(tenant_a.project, "ai_credits", "credits")
    per_seat = {"limit": 0, "per_entity": {"feature": "seats", "on_remove": "forfeit"}}
    subscribe(
        customer(tenant_a.project, "user-1"), product(tenant_a.project, "team", {seats: 3, credits: per_seat})
    )
    added = {"customer": "user-1", "feature": "seats", "entity": "ana"}
    assert api.post("/api/v1/entitlements/entities", added, key=tenant_a.key).status_code == 201

    page.goto("/admin/")
    page.fill("#id_username", "ops-seat")
    page.fill("#id_password", "correct horse battery")
    page.click("input[type=submit]")
    page.goto("/admin/customers/customer/")
    page.click("#result_list th.field-external_id a:text-is('user-1')")
    page.click("text=Explain entitlements")
    page.locator("[data-feature=ai_credits]").locator("a.button", has_text="Grant ai_credits").click()
    page.fill("input[name=value]", "40")
    page.fill("input[name=entity]", "ana")
    page.fill("textarea[name=reason]", "ticket 7: ana's launch budget")
    shots = Path(os.environ.get("TOLLGATE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "grant-form-entity.png"), full_page=True)
    page.click("input[name=apply]")
    expect(page.locator("ul.messagelist")).to_contain_text("user-1: granted ai_credits")
    expect(page.locator("ul.messagelist")).to_contain_text("to ana")
    box = page.locator("[data-feature=ai_credits]")
    expect(box.locator(".tg-verdict")).to_contain_text(
        "Each of the customer's seats may hold credits of its own, spent by the uses naming it before the "
        "account's (removing it forfeits them): ana 40."
    )
    expect(box.locator("tr[data-kind=credit_lot][data-effect=none]")).to_contain_text(
        "40 of 40 credits left from grant"
    )
    expect(box.locator("tr[data-kind=credit_lot][data-effect=none]")).to_contain_text("ana's own")
    expect(box.locator("tr[data-kind=grant][data-effect=none]")).to_contain_text(
        "ana's own credits: ticket 7: ana's launch budget"
    )
    page.screenshot(path=str(shots / "explain-entity-credits.png"), full_page=True)
    assert Grant.objects.get().entity == "ana"
    assert check(api, tenant_a.key, "user-1", "ai_credits")["balance"] == 0
