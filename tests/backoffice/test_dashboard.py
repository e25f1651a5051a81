"""The operators' dashboard renders per-project and total figures and a server-side SVG revenue chart."""

import re
from datetime import UTC, datetime

import time_machine
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from billing.models import Subscription
from billing.services.revenue_figures import revenue_figures_repair
from tests.billing.factories import PriceFactory
from tests.billing.payment_factories import CustomerFactory, PaymentFactory, SubscriptionFactory


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
