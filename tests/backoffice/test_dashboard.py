"""The operators' dashboard renders per-project and total figures and a server-side SVG revenue chart."""

import re
from datetime import UTC, datetime, timedelta

import time_machine
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from backoffice import margins_chart
from billing.models import Subscription
from billing.services.revenue_figures import revenue_figures_repair
from catalog.models import Feature
from entitlements.models import UsageEvent
from tests.billing.factories import PriceFactory
from tests.billing.payment_factories import CustomerFactory, PaymentFactory, SubscriptionFactory
from tests.billing.test_margin_alerts import NOW, seed_month
from tests.entitlements.helpers import customer


def test_dashboard_shows_projects_totals_and_chart(tenant_a, tenant_b, catalog):
    Subscription.objects.create(
        project=tenant_a.project,
        customer=CustomerFactory(project=tenant_a.project),
        price=catalog.pro_monthly,
        product=catalog.pro,
        quantity=2,
        status="active",
        stripe_subscription_id="sub_dash",
    )
    yen_monthly = PriceFactory(
        project=tenant_b.project, currency="jpy", unit_amount=500, type="recurring", interval="month"
    )
    SubscriptionFactory(project=tenant_b.project, price=yen_monthly, quantity=3)
    user = User.objects.create_user("support-op", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="support"))
    client = Client()
    client.force_login(user)
    with time_machine.travel(datetime(2026, 5, 20, 10, tzinfo=UTC), tick=False):
        PaymentFactory(
            project=tenant_a.project, amount=12345, status="succeeded", succeeded_at=timezone.now()
        )
        PaymentFactory(
            project=tenant_b.project,
            amount=500,
            currency="jpy",
            status="succeeded",
            succeeded_at=timezone.now(),
        )
        # Written directly, around the billing services: counted by the repair the nightly beat runs.
        assert revenue_figures_repair() == 4
        page = client.get("/admin/dashboard/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "alpha" in html
    assert "bravo" in html
    # MRR by the currency's minor unit: 2 × $30.00, and 3 × ¥500 (yen have no decimals).
    assert "<td>$60.00</td>" in html
    assert "<td>¥1,500</td>" in html
    assert "<th>¥1,500, $60.00</th>" in html
    assert "<svg" in html
    assert "<title>2026-05: $123.45</title>" in html
    assert "<title>2026-05: ¥500</title>" in html
    # Nothing loaded from another host (a chart library from a CDN): every src and href is this site's. (A bare
    # "cdn" could be in the page's random CSRF token.)
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html)
    assert client.get("/admin/").status_code == 200


def test_dashboard_needs_staff(client, db):
    response = client.get("/admin/dashboard/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_customer_page_shows_subscriptions_payments_invoices_and_a_stripe_link(tenant_a, catalog):
    customer = CustomerFactory(project=tenant_a.project, stripe_customer_id="cus_dash")
    Subscription.objects.create(
        project=tenant_a.project,
        customer=customer,
        price=catalog.pro_monthly,
        product=catalog.pro,
        status="active",
        stripe_subscription_id="sub_page",
    )
    PaymentFactory(project=tenant_a.project, customer=customer, amount=777, reference="order-777")
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    page = client.get(f"/admin/customers/customer/{quote(customer.pk)}/change/")
    assert page.status_code == 200, (page.status_code, page.get("Location"))
    html = page.content.decode()
    assert "pro-monthly" in html  # the subscription inline
    assert "order-777" in html
    assert "https://dashboard.stripe.com/test/customers/cus_dash" in html


def test_operator_creates_an_endpoint_in_admin_and_sees_the_secret_once(tenant_a):
    from core.models import AuditLogEntry
    from events.models import WebhookEndpoint

    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    bad = client.post(
        "/admin/events/webhookendpoint/add/",
        {
            "project": tenant_a.project.pk,
            "url": "http://example.com/hook",
            "events": '["*"]',
            "description": "",
            "enabled": "on",
        },
    )
    assert bad.status_code == 200  # re-rendered: http is only for localhost
    assert WebhookEndpoint.objects.count() == 0
    response = client.post(
        "/admin/events/webhookendpoint/add/",
        {
            "project": tenant_a.project.pk,
            "url": "https://hooks.example.com/t",
            "events": '["payment.succeeded"]',
            "description": "ops",
            "enabled": "on",
        },
        follow=True,
    )
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["payment.succeeded"]
    assert f"copy it now): {endpoint.secret}" in response.content.decode()
    assert AuditLogEntry.objects.get(action="webhook_endpoint.created").actor_repr == "root"
    client.post(f"/admin/events/webhookendpoint/{quote(endpoint.pk)}/delete/", {"post": "yes"})
    assert WebhookEndpoint.objects.count() == 0
    assert AuditLogEntry.objects.filter(action="webhook_endpoint.deleted").count() == 1


def test_a_projects_link_works_whatever_its_id_looks_like(db):
    """Django's admin reads `_XX` in a URL's object id as an escaped character: an id such as `proj_3F…` must be
    quoted in links (`admin_urlquote`), or its page is "not found" for one project in fifteen."""
    from django.contrib.admin.utils import quote

    from tests.projects.factories import ProjectFactory

    project = ProjectFactory(id="proj_3Fdashboardlink0001", slug="hexy")
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    html = client.get("/admin/dashboard/").content.decode()
    link = f"/admin/projects/project/{quote(project.pk)}/change/"
    assert f'href="{link}"' in html
    page = client.get(link)
    assert (page.status_code, project.slug in page.content.decode()) == (200, True)


def test_the_least_profitable_customers_of_the_month_per_currency(api, tenant_a, tenant_b, monkeypatch):
    """Margins this month across every project, from usage recorded through the API (priced by the cost table,
    billed by a graduated metered price: `seed_month`) and a call priced in euros; least profitable first, ties
    by project. The top three here: u1 (a margin of $0.415) is fourth."""
    monkeypatch.setattr(margins_chart, "TOP", 3)
    seed_month(api, tenant_a, tenant_b)
    UsageEvent.objects.create(
        project=tenant_b.project,
        customer=customer(tenant_b.project, "b-eu"),
        feature=Feature.objects.get(project=tenant_b.project, key="tokens"),
        event_id="eu-1",
        quantity=1,
        timestamp=NOW - timedelta(hours=1),
        meter_status="skipped",
        dimensions={"model": "gpt", "values": {"input_tokens": 1}, "cost_table": 9, "currency": "eur"},
        cost_micros=1_234_567,
    )
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    with time_machine.travel(NOW, tick=False):
        html = client.get("/admin/dashboard/").content.decode()
    assert "<h2>Least profitable customers this month, May 2026 (all projects)</h2>" in html
    charts = re.findall(
        r'<figure class="tg-chart tg-margins" data-currency="(\w+)">\s*<h3>([^<]+)</h3>(.*?)</figure>',
        html,
        re.S,
    )
    assert [(currency, title) for currency, title, _ in charts] == [
        ("eur", "Least profitable customers this month (EUR)"),
        ("usd", "Least profitable customers this month (USD)"),
    ]
    bars = {
        currency: re.findall(
            r'<g class="tg-customer" data-project="(\w+)" data-customer="([\w-]+)" data-value="(-?\d+)">'
            r"<title>([^<]+)</title>",
            body,
        )
        for currency, _, body in charts
    }
    assert bars == {
        "eur": [
            ("bravo", "b-eu", "-1234567", "bravo · b-eu: margin -€1.234567; billed €0.00, cost €1.234567")
        ],
        "usd": [
            ("alpha", "u2", "-15000", "alpha · u2: margin -$0.015; billed $0.00, cost $0.015"),
            ("bravo", "b1", "-15000", "bravo · b1: margin -$0.015; billed $0.00, cost $0.015"),
            (
                "alpha",
                "u3",
                "2500",
                "alpha · u3: margin $0.0025 (8.33 % of billed); billed $0.03, cost $0.0275",
            ),
        ],
    }
    values = {
        currency: re.findall(r'<text class="tg-value"[^>]*>([^<]+)</text>', body)
        for currency, _, body in charts
    }
    assert values == {"eur": ["-€1.234567"], "usd": ["-$0.015", "-$0.015", "$0.0025"]}
    # The axis: the largest loss and margin rounded out to a readable amount, and zero (its label left out where it
    # would run into the margin's: the solid zero line says it).
    ticks = {
        currency: re.findall(r'<text class="tg-tick"[^>]*>([^<]+)</text>', body)
        for currency, _, body in charts
    }
    assert ticks == {"eur": ["-€2.00", "€0.00"], "usd": ["-$0.02", "$0.004"]}
    # Each name leads to the customer's page; losses are drawn left of the zero line, in their own colour.
    u2 = customer(tenant_a.project, "u2")
    assert f'<a href="/admin/customers/customer/{quote(u2.pk)}/change/"><text class="tg-name"' in charts[1][2]
    assert re.findall(r'<rect class="tg-bar( tg-loss)?" x="(\d+)" y="\d+" width="(\d+)"', charts[1][2]) == [
        (" tg-loss", "298", "204"),
        (" tg-loss", "298", "204"),
        ("", "502", "34"),
    ]


def test_the_margins_chart_says_when_there_is_nothing_to_show(db):
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    html = client.get("/admin/dashboard/").content.decode()
    assert "<p>No usage with a cost or a charge this month.</p>" in html


def test_a_project_whose_margins_cannot_be_read_is_named_and_the_others_shown(
    api, tenant_a, tenant_b, monkeypatch, caplog
):
    seed_month(api, tenant_a, tenant_b)
    real = margins_chart.margins_report

    def report(*, project, **kwargs):
        if project.slug == "alpha":
            raise RuntimeError("too many events")
        return real(project=project, **kwargs)

    monkeypatch.setattr(margins_chart, "margins_report", report)
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    with time_machine.travel(NOW, tick=False):
        page = client.get("/admin/dashboard/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "The margins of alpha could not be read (the error is in the log); they are left out." in html
    assert re.findall(r'data-project="(\w+)" data-customer="([\w-]+)"', html) == [("bravo", "b1")]
    assert "The margins of project" in caplog.text
