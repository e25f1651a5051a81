"""A product's versions in the back office, in a real browser at 1366×768: the comparison page marks the rows that
differ (a readable highlight, and the word "changed") — a price the draft reprices too — links the draft's
re-rating as CSV, fits the screen, and its "Publish draft" button publishes.

Screenshots of the product page's versions, the comparison of two versions and of the draft are written to
$TOLLGATE_SCREENSHOTS (when set) for people to look at.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.db import connections
from playwright.sync_api import Page, expect, sync_playwright

from catalog.models import Product, ProductDraft
from catalog.services.drafts import product_draft_publish, product_draft_put
from catalog.services.features import feature_create
from catalog.services.products import product_update
from tests.browser.test_admin_layout import _contrast
from tests.browser.test_operator_journey import CHROMIUM, CHROMIUM_ARGS
from tests.catalog import ACTOR

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the server's thread reads committed rows only
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"Debian's chromium is not installed at {CHROMIUM}"
    ),
]


@pytest.fixture
def page(live_server, monkeypatch) -> Iterator[Page]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(base_url=live_server.url, viewport={"width": 1366, "height": 768})
            tab.set_default_timeout(60_000)
            yield tab
        finally:
            browser.close()
            connections.close_all()


def _log_in(page: Page) -> None:
    User.objects.create_superuser("root-op", password="correct horse battery")
    page.goto("/admin/login/")
    page.fill("#id_username", "root-op")
    page.fill("#id_password", "correct horse battery")
    page.click("input[type=submit]")


def _shoot(page: Page, name: str) -> None:
    folder = os.environ.get("TOLLGATE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=False)


def _versioned(project, product: Product) -> Product:
    """Version 2 gives calls and export; version 3 (from a draft with a note) changes calls and adds seats; a
    draft of version 4 makes calls unlimited, drops export and caps the account at $500.00."""
    for key, kind in (("api_calls", "metered"), ("export", "boolean"), ("seats", "allocation")):
        feature_create(project=project, actor=ACTOR, key=key, name=key, type=kind)
    product = product_update(actor=ACTOR, product=product, features={"api_calls": 1000, "export": True})
    product_draft_put(
        actor=ACTOR,
        product=product,
        features={
            "api_calls": {"limit": 300, "overage": "allowed"},
            "export": True,
            "seats": {"per_unit": 5},
        },
        note="seats per licence, overage allowed",
    )
    product = product_draft_publish(actor=ACTOR, product=product)
    product_draft_put(
        actor=ACTOR,
        product=product,
        features={"api_calls": None, "seats": {"per_unit": 5}},
        account_cap={"amount": 50000, "currency": "usd"},
        prices={"pro-monthly": {"unit_amount": 3500}},
        note="unlimited calls",
    )
    return Product.objects.get(pk=product.pk)


def _fits(page: Page) -> None:
    sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1], sizes


def test_the_comparison_marks_what_differs_and_publishes_the_draft(page, tenant_a, catalog):
    pro = _versioned(tenant_a.project, catalog.pro)
    _log_in(page)
    base = f"/admin/catalog/product/{quote(pro.pk)}"

    page.goto(f"{base}/change/")
    section = page.locator("#tg-versions")
    section.scroll_into_view_if_needed()
    expect(section.locator('tr[data-version="3"]')).to_contain_text("latest")
    expect(section.locator('tr[data-version="draft"]')).to_contain_text("api_calls")
    _fits(page)
    _shoot(page, "product-versions")

    page.click("text=Compare versions")
    page.wait_for_url(f"**{base}/versions/")
    changed = page.locator('#tg-compare tr.tg-changed[data-feature="api_calls"]')
    expect(changed).to_be_visible()
    expect(changed.locator("td.tg-a")).to_have_text("1000")
    expect(changed.locator("td.tg-b")).to_have_text('{"limit": 300, "overage": "allowed"}')
    expect(changed.locator("td.tg-mark")).to_have_text("changed")
    same = page.locator('#tg-compare tr[data-feature="export"]')
    expect(same).to_have_attribute("data-differs", "false")
    paint = "el => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]"
    colour, background = changed.locator("td.tg-b").evaluate(paint)
    assert _contrast(colour, background) >= 4.5
    assert background != same.locator("td.tg-b").evaluate(paint)[1]  # the highlight shows
    assert page.locator("#tg-compare tr.tg-changed").count() == 2  # api_calls and seats
    expect(page.locator("#tg-compare tr.tg-account-cap")).to_have_attribute("data-differs", "false")
    _fits(page)
    _shoot(page, "product-versions-compare")

    page.select_option("#tg-a", "3")
    page.select_option("#tg-b", "draft")
    page.click("#tg-pick input[type=submit]")
    page.wait_for_url("**/versions/?a=3&b=draft")
    expect(page.locator('#tg-compare tr.tg-changed[data-feature="export"] td.tg-b')).to_have_text("not given")
    capped = page.locator("#tg-compare tr.tg-changed.tg-account-cap")
    expect(capped.locator("td.tg-a")).to_have_text("none")
    expect(capped.locator("td.tg-b")).to_have_text("$500.00 a period across its metered features, then block")
    expect(capped.locator("td.tg-mark")).to_have_text("changed")
    repriced = page.locator('#tg-prices tr.tg-changed[data-price="pro-monthly"]')
    expect(repriced.locator("td.tg-a")).to_have_text("$30.00 a month")
    expect(repriced.locator("td.tg-b")).to_have_text("$35.00 a month")
    expect(page.locator('#tg-prices tr[data-price="pro-monthly-eur"]')).to_have_attribute(
        "data-differs", "false"
    )
    expect(page.locator("#tg-rerating")).to_have_text("Download the re-rating (CSV)")
    _fits(page)
    _shoot(page, "product-versions-draft")

    page.click("input[value='Publish draft']")
    page.wait_for_url("**/versions/?a=3&b=4")
    expect(page.locator("ul.messagelist li.success")).to_have_text("The draft was published as version 4.")
    expect(page.locator("#tg-draft")).to_have_count(0)
    assert Product.objects.get(pk=pro.pk).version == 4
    assert not ProductDraft.objects.filter(product=pro).exists()
