""" "Explain entitlements": per feature, the API's answer now and every source that gives it, blocks it, or does not
(any longer) give it — each kind of source, with the operator's words for why."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

from billing.models import Payment
from catalog.models import Feature
from core.actors import Actor
from entitlements import cache as ent_cache
from entitlements.explain import entitlements_explain
from entitlements.models import EntitlementSettings, Purchase, SubscriptionSource, UsageCounter
from entitlements.resolver import subscription_period
from entitlements.services.grants import grant_create
from tests.entitlements.grant_factories import GrantFactory, RevocationFactory
from tests.entitlements.helpers import customer, feature, hand, paid_payment, product, subscribe

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def world(tenant_a, frozen):
    """One customer with every kind of source, in force or not, on six features."""
    project = tenant_a.project
    project.default_product = "free"
    project.save(update_fields=["default_product"])
    f = {
        "basic": feature(project, "basic"),
        "calls": feature(project, "calls", Feature.Type.METERED),
        "credits": feature(project, "credits", Feature.Type.CREDITS),
        "export": feature(project, "export"),
        "reports": feature(project, "reports"),
        "sso": feature(project, "sso"),
    }
    pro = product(project, "pro", {f["export"]: True, f["sso"]: True})
    team = product(project, "team", {f["reports"]: True})
    plus = product(project, "plus", {f["calls"]: 500})
    lifetime = product(project, "lifetime", {f["calls"]: 1000})
    monthly_pass = product(project, "monthly-pass", {f["reports"]: True}, duration_days=30)
    credit_pack = product(project, "credit-pack", {f["credits"]: 100})
    product(project, "free", {f["basic"]: True})
    cust = customer(project, "user-1")
    s = {
        "pro": subscribe(cust, pro, start=NOW - 5 * DAY),
        "pro_grace": subscribe(cust, pro, status="past_due", start=NOW - DAY),
        "team_past_due": subscribe(cust, team, status="past_due", start=NOW - 10 * DAY),
        "team_unpaid": subscribe(cust, team, status="unpaid", start=NOW - 40 * DAY),
        "team_canceled": subscribe(
            cust, team, status="canceled", start=NOW - 70 * DAY, canceled_at=NOW - 40 * DAY
        ),
        "plus_trial": subscribe(cust, plus, status="trialing", start=NOW - DAY, trial_end=NOW + 5 * DAY),
    }
    actor = Actor.system("tests")
    pay = {
        "lifetime": paid_payment(cust, lifetime),
        "pass": paid_payment(cust, monthly_pass, succeeded_at=NOW - 40 * DAY),
        "credits": paid_payment(cust, credit_pack),
        "refunded": paid_payment(cust, credit_pack),
    }
    for payment in pay.values():
        hand(payment=payment)
    Payment.objects.filter(pk=pay["refunded"].pk).update(status=Payment.Status.REFUNDED)
    hand(payment=pay["refunded"])
    p = {name: Purchase.objects.get(payment_id=payment.pk) for name, payment in pay.items()}
    g = {
        "calls": grant_create(
            project=project,
            actor=actor,
            external_id="user-1",
            feature=f["calls"],
            reason="launch promo",
            value=100,
            value_given=True,
            expires_at=NOW + 5 * DAY,
        ),
        "calls_expired": GrantFactory(
            project=project, customer=cust, feature=f["calls"], value=50, expires_at=NOW - DAY, reason="beta"
        ),
        "calls_ended": GrantFactory(
            project=project,
            customer=cust,
            feature=f["calls"],
            value=10,
            deleted_at=NOW - 2 * DAY,
            reason="oops",
        ),
    }
    r = {
        "sso": RevocationFactory(project=project, customer=cust, feature=f["sso"], reason="abuse report"),
        "sso_lifted": RevocationFactory(
            project=project, customer=cust, feature=f["sso"], deleted_at=NOW - DAY, reason="chargeback"
        ),
        "sso_expired": RevocationFactory(
            project=project, customer=cust, feature=f["sso"], expires_at=NOW - DAY, reason="cool-off"
        ),
    }
    return {"project": project, "customer": cust, "f": f, "s": s, "p": p, "pay": pay, "g": g, "r": r}


def _rows(explained):
    """The sources as (kind, id, effect), blocking ones first, then giving, then the rest (rows created in the
    same frozen instant have no order among themselves)."""
    effects = [s.effect for s in explained.sources]
    assert effects == sorted(effects, key=["blocks", "gives", "none"].index)
    return sorted((s.kind, s.id, s.effect) for s in explained.sources)


def _why(explained, source_id):
    return next(s.why for s in explained.sources if s.id == source_id)


def test_every_kind_of_source_with_its_effect_and_why(world):
    s, p, g, r, pay = world["s"], world["p"], world["g"], world["r"], world["pay"]
    explanation = entitlements_explain(project=world["project"], customer=world["customer"])
    by_key = {f.key: f for f in explanation.features}
    assert list(by_key) == ["basic", "calls", "credits", "export", "reports", "sso"]
    assert explanation.past_due_grace == timedelta(days=3)
    # the next change by itself: the grace of the past-due pro subscription ends in 2 days
    assert explanation.next_change == NOW + 2 * DAY

    basic = by_key["basic"]
    free = world["project"].default_product
    assert (basic.allowed, basic.verdict) == (True, "Allowed: on.")
    assert [(x.kind, x.effect, x.product, x.why) for x in basic.sources] == [
        ("default_product", "gives", free, "the project's default product")
    ]

    export = by_key["export"]
    assert (export.allowed, export.verdict) == (True, "Allowed: on.")
    assert _rows(export) == sorted(
        [
            ("subscription", s["pro"].pk, "gives"),
            ("subscription", s["pro_grace"].pk, "gives"),
        ]
    )
    assert _why(export, s["pro"].pk) == "active; current period ends 2026-04-04 12:00 UTC"
    assert _why(export, s["pro_grace"].pk) == (
        "past due: the renewal payment failed; access is kept for the grace period (3 days) from "
        "2026-03-09 12:00 UTC, until 2026-03-12 12:00 UTC"
    )

    # "why can't user-1 use reports?" — every subscription or purchase that could give it says why it does not
    reports = by_key["reports"]
    assert (reports.allowed, reports.verdict) == (
        False,
        "Not allowed: nothing gives this feature now (see why below).",
    )
    assert _rows(reports) == sorted(
        [
            ("subscription", s["pro"].pk, "none"),
            ("subscription", s["pro_grace"].pk, "none"),
            ("subscription", s["team_past_due"].pk, "none"),
            ("subscription", s["team_unpaid"].pk, "none"),
            ("subscription", s["team_canceled"].pk, "none"),
            ("subscription", s["plus_trial"].pk, "none"),
            ("purchase", p["lifetime"].pk, "none"),
            ("purchase", p["pass"].pk, "none"),
            ("purchase", p["credits"].pk, "none"),
        ]
    )
    assert _why(reports, s["pro"].pk) == (
        "active; current period ends 2026-04-04 12:00 UTC; but product 'pro' does not include this feature"
    )
    assert _why(reports, s["team_past_due"].pk) == (
        "past due beyond the grace period: the renewal payment failed and the grace period (3 days) ended "
        "2026-03-03 12:00 UTC"
    )
    assert _why(reports, s["team_unpaid"].pk) == (
        "unpaid: Stripe stopped retrying the renewal payment; no access until an invoice is paid"
    )
    assert _why(reports, s["team_canceled"].pk) == "canceled 2026-01-29 12:00 UTC: no access"
    assert _why(reports, p["pass"].pk) == "bought 2026-01-29 12:00 UTC, expired 2026-02-28 12:00 UTC"

    calls = by_key["calls"]
    assert (calls.allowed, calls.verdict) == (True, "Allowed: 0 of 1100 used this period.")
    assert _rows(calls) == sorted(
        [
            ("subscription", s["plus_trial"].pk, "gives"),
            ("purchase", p["lifetime"].pk, "gives"),
            ("grant", g["calls"].pk, "gives"),
            ("grant", g["calls_expired"].pk, "none"),
            ("grant", g["calls_ended"].pk, "none"),
        ]
    )
    assert {x.id: x.value for x in calls.sources} == {
        s["plus_trial"].pk: 500,
        p["lifetime"].pk: 1000,
        g["calls"].pk: 100,
        g["calls_expired"].pk: 50,
        g["calls_ended"].pk: 10,
    }
    assert _why(calls, s["plus_trial"].pk) == "trialing until 2026-03-15 12:00 UTC"
    assert _why(calls, p["lifetime"].pk) == "bought 2026-03-10 12:00 UTC, for life"
    assert _why(calls, g["calls"].pk) == "launch promo (until 2026-03-15 12:00 UTC)"
    assert _why(calls, g["calls_expired"].pk) == "expired 2026-03-09 12:00 UTC — was: beta"
    assert _why(calls, g["calls_ended"].pk) == "ended 2026-03-08 12:00 UTC — was: oops"

    credits = by_key["credits"]
    assert (credits.allowed, credits.verdict) == (True, "Allowed: 100 credits left.")
    lot, voided = (x for x in credits.sources if x.kind == "credit_lot")
    assert [(x.kind, x.effect, x.value) for x in credits.sources] == [
        ("purchase", "gives", 100),
        ("credit_lot", "gives", 100),
        ("purchase", "none", 100),
        ("credit_lot", "none", 0),
    ]
    assert _why(credits, p["refunded"].pk) == (
        f"ended 2026-03-10 12:00 UTC: refunded in full (payment {pay['refunded'].pk} is refunded)"
    )
    assert lot.why == f"100 of 100 credits left from purchase {p['credits'].pk}; no expiry"
    assert voided.why == f"100 credits from purchase {p['refunded'].pk}, taken back 2026-03-10 12:00 UTC"

    sso = by_key["sso"]
    assert (sso.allowed, sso.verdict) == (False, "Not allowed: revoked (see the revocation below).")
    assert _rows(sso) == sorted(
        [
            ("revocation", r["sso"].pk, "blocks"),
            ("subscription", s["pro"].pk, "gives"),
            ("subscription", s["pro_grace"].pk, "gives"),
            ("revocation", r["sso_lifted"].pk, "none"),
            ("revocation", r["sso_expired"].pk, "none"),
        ]
    )
    assert _why(sso, r["sso"].pk) == "abuse report (no expiry)"
    assert _why(sso, r["sso_lifted"].pk) == "lifted 2026-03-09 12:00 UTC — was: chargeback"
    assert _why(sso, r["sso_expired"].pk) == "expired 2026-03-09 12:00 UTC — was: cool-off"


def test_the_answer_is_the_apis_and_the_sources_in_force_are_the_resolvers(api, tenant_a, world):
    explanation = entitlements_explain(project=world["project"], customer=world["customer"])
    listed = api.get("/api/v1/entitlements", key=tenant_a.key, json_body={"customer": "user-1"}).json()
    rows = {row["feature"]: row for row in listed["entitlements"]}
    for explained in explanation.features:
        assert json.loads(json.dumps(explained.answer)) == rows[explained.key]
        in_force = {
            (x.kind, x.id) for x in explained.sources if x.effect != "none" and x.kind != "credit_lot"
        }
        assert in_force == {(source["type"], source["id"]) for source in rows[explained.key]["sources"]}


def test_past_due_grace_follows_the_projects_setting(tenant_a, frozen):
    project = tenant_a.project
    EntitlementSettings.objects.create(project=project, past_due_grace_seconds=12 * 3600)
    reports = feature(project, "reports")
    cust = customer(project, "user-1")
    sub = subscribe(cust, product(project, "team", {reports: True}), status="past_due", start=NOW - DAY)
    (explained,) = entitlements_explain(project=project, customer=cust).features
    assert (explained.allowed, [(x.id, x.effect) for x in explained.sources]) == (False, [(sub.pk, "none")])
    assert explained.sources[0].why == (
        "past due beyond the grace period: the renewal payment failed and the grace period (12 hours) ended "
        "2026-03-10 00:00 UTC"
    )


def test_a_used_up_limit_is_the_reason(tenant_a, frozen, django_capture_on_commit_callbacks):
    project = tenant_a.project
    calls = feature(project, "calls", Feature.Type.METERED)
    cust = customer(project, "user-1")
    subscribe(cust, product(project, "plus", {calls: 2}), start=NOW - DAY)
    period = subscription_period(SubscriptionSource.objects.get(), NOW)
    UsageCounter.objects.create(
        project=project,
        customer=cust,
        feature=calls,
        period_start=period.start,
        period_end=period.end,
        used=2,
    )
    (explained,) = entitlements_explain(project=project, customer=cust).features
    assert (explained.allowed, explained.verdict) == (
        False,
        "Not allowed: the limit is used up (2 of 2; resets 2026-04-08T12:00:00Z).",
    )
    UsageCounter.objects.filter(customer=cust).update(held=1)  # one of the two is a hold's
    with django_capture_on_commit_callbacks(execute=True):
        ent_cache.usage_changed(project_id=project.pk, external_ids=[cust.external_id])
    (explained,) = entitlements_explain(project=project, customer=cust).features
    assert (
        explained.verdict
        == "Not allowed: the limit is used up (1 of 2, 1 held; resets 2026-04-08T12:00:00Z)."
    )


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_page_shows_each_feature_and_links_to_grant_for_those_allowed_to(world):
    cust = world["customer"]
    support = User.objects.create_user("support-op", password="pw", is_staff=True)
    support.groups.add(Group.objects.get(name="support"))
    page = _client(support).get(f"/admin/customers/customer/{quote(cust.pk)}/entitlements/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-feature="reports" data-allowed="false"' in text
    assert 'data-feature="export" data-allowed="true"' in text
    assert "past due beyond the grace period" in text
    assert f'href="/admin/customers/customer/{quote(cust.pk)}/entitlements/grant/?feature=reports"' in text
    assert f'href="/admin/billing/subscription/{quote(world["s"]["team_unpaid"].pk)}/change/"' in text
    # the customer page links to it
    change = _client(support).get(f"/admin/customers/customer/{quote(cust.pk)}/change/")
    assert f'href="/admin/customers/customer/{quote(cust.pk)}/entitlements/"' in change.content.decode()


def test_a_reader_without_the_entitlement_permissions_sees_no_grant_link(world):
    reader = User.objects.create_user("reader", password="pw", is_staff=True)
    reader.user_permissions.add(Permission.objects.get(codename="view_customer"))
    page = _client(reader).get(f"/admin/customers/customer/{quote(world['customer'].pk)}/entitlements/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-feature="reports" data-allowed="false"' in text
    assert f"/customer/{quote(world['customer'].pk)}/entitlements/grant/" not in text
    assert f"/customer/{quote(world['customer'].pk)}/entitlements/revoke/" not in text


def test_staff_without_view_permission_cannot_open_it(world):
    nobody = User.objects.create_user("nobody", password="pw", is_staff=True)
    page = _client(nobody).get(f"/admin/customers/customer/{quote(world['customer'].pk)}/entitlements/")
    assert page.status_code == 403


# What the verdict and the effects sit on where their rule sets no background of their own: the module header
# (Django admin's --primary, light theme) and the table's rows (white).
_BACKGROUND_BELOW = {
    "tg-yes": "#79aec8",
    "tg-no": "#79aec8",
    "tg-effect-gives": "#ffffff",
    "tg-effect-blocks": "#ffffff",
}


def _luminance(colour: str) -> float:
    channels = [int(colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = ((c / 12.92) if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(text: str, background: str) -> float:
    lighter, darker = sorted((_luminance(text), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _colours(css: str, name: str) -> tuple[str, str]:
    """The text and background colours the page's style rules give the class `name` (the last rule wins)."""
    colour = background = None
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", css):
        if not re.search(rf"\.{name}(?![\w-])", selectors):
            continue
        if found := re.search(r"(?<![\w-])color:\s*(#[0-9a-fA-F]{6})", body):
            colour = found.group(1)
        if found := re.search(r"background(?:-color)?:\s*(#[0-9a-fA-F]{6})", body):
            background = found.group(1)
    assert colour is not None, name
    return colour, background or _BACKGROUND_BELOW[name]


def test_the_verdict_and_the_effects_are_readable(world):
    """WCAG AA: text and its background at least 4.5:1, computed from the colours the page uses."""
    cust = world["customer"]
    html = _client(User.objects.create_superuser("root", password="pw")).get(
        f"/admin/customers/customer/{quote(cust.pk)}/entitlements/"
    )
    text = html.content.decode()
    css = "".join(re.findall(r"<style>(.*?)</style>", text, re.DOTALL))
    assert '<span class="tg-yes">allowed</span>' in text
    assert '<span class="tg-no">not allowed</span>' in text
    assert '<span class="tg-effect-gives">gives</span>' in text
    assert '<span class="tg-effect-blocks">blocks</span>' in text
    ratios = {name: round(_contrast(*_colours(css, name)), 2) for name in _BACKGROUND_BELOW}
    assert {name: ratio for name, ratio in ratios.items() if ratio < 4.5} == {}
