"""Granting and revoking entitlements in the back office: each role logged in, a reason asked, the service called,
the audit row written — and for every denial, nothing happened."""

from datetime import UTC, datetime

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

from catalog.models import Feature
from core.models import AuditLogEntry
from core.roles import FINANCE_EXTRA, SUPPORT_EXTRA
from entitlements.models import Grant, Purchase, Revocation
from tests.entitlements.grant_factories import GrantFactory, RevocationFactory
from tests.entitlements.helpers import check, customer, feature, hand, paid_payment, product, subscribe

CUSTOMERS = "/admin/customers/customer/"
EXPIRY = datetime(2031, 1, 2, 3, 4, tzinfo=UTC)


def _login(role: str) -> Client:
    user = User.objects.create_user(f"{role}-op", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def _reader() -> Client:
    """Staff who may read customers, grants, revocations and purchases, and nothing else."""
    user = User.objects.create_user("reader", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_customer", "view_grant", "view_revocation", "view_purchase"]
        )
    )
    client = Client()
    client.force_login(user)
    return client


def _action(client, url, action, ids, **fields):
    return client.post(url, {"action": action, "_selected_action": ids, "apply": "1", **fields})


def _nothing_happened():
    assert not Grant.objects.exists()
    assert not Revocation.objects.exists()
    assert not AuditLogEntry.objects.filter(action__startswith="entitlement_").exists()


def test_the_roles_have_the_entitlement_permissions(db):
    for role in ("support", "finance", "admin"):
        codes = set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))
        assert {"grant_entitlement", "revoke_entitlement"} <= codes, role
    # every permission the roles name exists (roles_sync skips names it cannot find)
    for name in (*SUPPORT_EXTRA, *FINANCE_EXTRA):
        app_label, codename = name.split(".")
        assert Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists(), name


@pytest.mark.parametrize("role", ["support", "finance", "admin"])
def test_each_role_grants_with_a_reason_and_an_expiry(
    role, api, tenant_a, django_capture_on_commit_callbacks
):
    reports = feature(tenant_a.project, "reports")
    cust = customer(tenant_a.project, "user-1")
    assert check(api, tenant_a.key, "user-1", "reports")["allowed"] is False
    client = _login(role)
    form = client.post(CUSTOMERS, {"action": "grant_entitlement", "_selected_action": [cust.pk]})
    assert form.status_code == 200
    assert b'name="reason"' in form.content
    assert b'<option value="reports">' in form.content
    with django_capture_on_commit_callbacks(execute=True):
        done = _action(
            client,
            CUSTOMERS,
            "grant_entitlement",
            [cust.pk],
            feature="reports",
            expires_at="2031-01-02T03:04",
            reason="ticket 42: paid by invoice",
        )
    assert done.status_code == 302
    grant = Grant.objects.get()
    assert (grant.customer_id, grant.feature_id, grant.value, grant.expires_at, grant.reason) == (
        cust.pk,
        reports.pk,
        True,
        EXPIRY,
        "ticket 42: paid by invoice",
    )
    entry = AuditLogEntry.objects.get(action="entitlement_grant.created")
    assert (entry.actor_type, entry.actor_repr, entry.reason, entry.target_id) == (
        "user",
        f"{role}-op",
        "ticket 42: paid by invoice",
        grant.pk,
    )
    assert entry.after == {
        "customer": "user-1",
        "feature": "reports",
        "value": True,
        "expires_at": "2031-01-02T03:04:00Z",
    }
    assert check(api, tenant_a.key, "user-1", "reports")["allowed"] is True


def test_a_metered_top_up_takes_a_json_value(api, tenant_a, django_capture_on_commit_callbacks):
    calls = feature(tenant_a.project, "calls", Feature.Type.METERED)
    cust = customer(tenant_a.project, "user-1")
    subscribe(cust, product(tenant_a.project, "plus", {calls: 500}))
    with django_capture_on_commit_callbacks(execute=True):
        _action(
            _login("support"),
            CUSTOMERS,
            "grant_entitlement",
            [cust.pk],
            feature="calls",
            value="250",
            reason="migration credit",
        )
    assert (Grant.objects.get().value, Grant.objects.get().expires_at) == (250, None)
    assert check(api, tenant_a.key, "user-1", "calls")["limit"] == 750


@pytest.mark.parametrize("role", ["support", "admin"])
def test_each_role_revokes_with_a_reason_until_an_expiry(
    role, api, tenant_a, django_capture_on_commit_callbacks
):
    sso = feature(tenant_a.project, "sso")
    cust = customer(tenant_a.project, "user-1")
    subscribe(cust, product(tenant_a.project, "pro", {sso: True}))
    assert check(api, tenant_a.key, "user-1", "sso")["allowed"] is True
    with django_capture_on_commit_callbacks(execute=True):
        done = _action(
            _login(role),
            CUSTOMERS,
            "revoke_entitlement",
            [cust.pk],
            feature="sso",
            expires_at="2031-01-02T03:04",
            reason="abuse report 7",
        )
    assert done.status_code == 302
    revocation = Revocation.objects.get()
    assert (revocation.feature_id, revocation.expires_at, revocation.reason) == (
        sso.pk,
        EXPIRY,
        "abuse report 7",
    )
    entry = AuditLogEntry.objects.get(action="entitlement_revocation.created")
    assert (entry.actor_repr, entry.reason, entry.target_id) == (
        f"{role}-op",
        "abuse report 7",
        revocation.pk,
    )
    assert check(api, tenant_a.key, "user-1", "sso")["allowed"] is False


def test_why_cant_the_customer_use_it_then_fix_it_from_the_customer_page(
    api, tenant_a, django_capture_on_commit_callbacks
):
    reports = feature(tenant_a.project, "reports")
    cust = customer(tenant_a.project, "user-1")
    subscribe(cust, product(tenant_a.project, "team", {reports: True}), status="unpaid")
    client = _login("support")
    explain = f"{CUSTOMERS}{quote(cust.pk)}/entitlements/"
    before = client.get(explain).content.decode()
    assert 'data-feature="reports" data-allowed="false"' in before
    assert "unpaid: Stripe stopped retrying the renewal payment" in before
    grant_page = f"{explain}grant/?feature=reports"
    assert f'href="{grant_page}"' in before
    form = client.get(grant_page)
    assert form.status_code == 200
    assert b'<option value="reports" selected>' in form.content
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(grant_page, {"apply": "1", "feature": "reports", "reason": "invoice paid by wire"})
    assert (done.status_code, done["Location"]) == (302, explain)
    grant = Grant.objects.get()
    after = client.get(explain).content.decode()
    assert 'data-feature="reports" data-allowed="true"' in after
    assert f'data-kind="grant" data-effect="gives" data-id="{grant.pk}"' in after
    assert "invoice paid by wire (no expiry)" in after
    assert AuditLogEntry.objects.get(action="entitlement_grant.created").actor_repr == "support-op"
    assert check(api, tenant_a.key, "user-1", "reports")["allowed"] is True


def test_revoking_from_the_customer_page(api, tenant_a, django_capture_on_commit_callbacks):
    sso = feature(tenant_a.project, "sso")
    cust = customer(tenant_a.project, "user-1")
    subscribe(cust, product(tenant_a.project, "pro", {sso: True}))
    page = f"{CUSTOMERS}{quote(cust.pk)}/entitlements/revoke/?feature=sso"
    with django_capture_on_commit_callbacks(execute=True):
        done = _login("finance").post(page, {"apply": "1", "feature": "sso", "reason": "chargeback"})
    assert done.status_code == 302
    assert Revocation.objects.get().reason == "chargeback"
    assert check(api, tenant_a.key, "user-1", "sso")["allowed"] is False


def test_a_reader_cannot_grant_or_revoke(api, tenant_a):
    feature(tenant_a.project, "reports")
    cust = customer(tenant_a.project, "user-1")
    client = _reader()
    listing = client.get(CUSTOMERS)
    assert listing.status_code == 200
    assert b'value="grant_entitlement"' not in listing.content
    assert b'value="revoke_entitlement"' not in listing.content
    for action in ("grant_entitlement", "revoke_entitlement"):
        _action(client, CUSTOMERS, action, [cust.pk], feature="reports", reason="try")
    explain = f"{CUSTOMERS}{quote(cust.pk)}/entitlements/"
    for kind in ("grant", "revoke"):
        assert client.get(f"{explain}{kind}/?feature=reports").status_code == 403
        denied = client.post(f"{explain}{kind}/", {"apply": "1", "feature": "reports", "reason": "try"})
        assert denied.status_code == 403
    _nothing_happened()
    assert check(api, tenant_a.key, "user-1", "reports")["allowed"] is False


def test_a_reader_cannot_end_grants_lift_revocations_or_revoke_purchases(tenant_a):
    grant = GrantFactory(project=tenant_a.project)
    revocation = RevocationFactory(project=tenant_a.project)
    client = _reader()
    _action(client, "/admin/entitlements/grant/", "end", [grant.pk], reason="try")
    _action(client, "/admin/entitlements/revocation/", "lift", [revocation.pk], reason="try")
    assert Grant.objects.get(pk=grant.pk).deleted_at is None
    assert Revocation.objects.get(pk=revocation.pk).deleted_at is None
    assert not AuditLogEntry.objects.exists()
    purchases = client.get("/admin/entitlements/purchase/")
    assert purchases.status_code == 200
    assert b'value="revoke"' not in purchases.content


def test_support_ends_a_grant_and_lifts_a_revocation(tenant_a, django_capture_on_commit_callbacks):
    grant = GrantFactory(project=tenant_a.project)
    revocation = RevocationFactory(project=tenant_a.project)
    client = _login("support")
    with django_capture_on_commit_callbacks(execute=True):
        _action(client, "/admin/entitlements/grant/", "end", [grant.pk], reason="trial over")
        _action(client, "/admin/entitlements/revocation/", "lift", [revocation.pk], reason="cleared")
    assert Grant.objects.get(pk=grant.pk).deleted_at is not None
    assert Revocation.objects.get(pk=revocation.pk).deleted_at is not None
    assert sorted(AuditLogEntry.objects.values_list("action", "actor_repr", "reason")) == [
        ("entitlement_grant.deleted", "support-op", "trial over"),
        ("entitlement_revocation.deleted", "support-op", "cleared"),
    ]


def test_no_reason_no_grant(tenant_a):
    feature(tenant_a.project, "reports")
    cust = customer(tenant_a.project, "user-1")
    response = _action(_login("support"), CUSTOMERS, "grant_entitlement", [cust.pk], feature="reports")
    assert response.status_code == 200  # the form again, with the error
    assert b"This field is required." in response.content
    _nothing_happened()


def test_a_past_expiry_is_refused_and_nothing_is_granted(tenant_a):
    feature(tenant_a.project, "reports")
    cust = customer(tenant_a.project, "user-1")
    client = _login("support")
    response = _action(
        client,
        CUSTOMERS,
        "grant_entitlement",
        [cust.pk],
        feature="reports",
        expires_at="2020-01-01T00:00",
        reason="late",
    )
    assert response.status_code == 302
    messages = [str(m) for m in client.get(CUSTOMERS).context["messages"]]
    assert messages == ["user-1: expires_at must be in the future."]
    _nothing_happened()


def test_a_value_that_is_not_json_is_refused(tenant_a):
    feature(tenant_a.project, "calls", Feature.Type.METERED)
    cust = customer(tenant_a.project, "user-1")
    response = _action(
        _login("support"),
        CUSTOMERS,
        "grant_entitlement",
        [cust.pk],
        feature="calls",
        value="lots",
        reason="x",
    )
    assert response.status_code == 200
    assert b"Not JSON" in response.content
    _nothing_happened()


def test_a_feature_of_another_project_is_not_granted(tenant_a, tenant_b):
    feature(tenant_a.project, "reports")
    a = customer(tenant_a.project, "user-a")
    b = customer(tenant_b.project, "user-b")
    client = _login("support")
    _action(client, CUSTOMERS, "grant_entitlement", [a.pk, b.pk], feature="reports", reason="promo")
    messages = sorted(str(m) for m in client.get(CUSTOMERS).context["messages"])
    assert messages == [
        "Grant an entitlement: done for 1 of 2.",
        f"user-a: granted reports ({Grant.objects.get().pk})",
        "user-b: No such feature: 'reports'.",
    ]
    assert list(Grant.objects.values_list("customer_id", flat=True)) == [a.pk]
    assert AuditLogEntry.objects.filter(action="entitlement_grant.created").count() == 1


def test_revoking_a_purchase_after_a_partial_refund_is_audited_as_the_operator(
    tenant_a, django_capture_on_commit_callbacks
):
    """A partial refund changes nothing by itself; an operator who decides otherwise revokes the purchase."""
    reports = feature(tenant_a.project, "reports")
    payment = paid_payment(
        customer(tenant_a.project, "user-1"), product(tenant_a.project, "pack", {reports: True})
    )
    with django_capture_on_commit_callbacks(execute=True):
        hand(payment=payment)
        purchase = Purchase.objects.get(payment_id=payment.pk)
        _action(
            _login("support"),
            "/admin/entitlements/purchase/",
            "revoke",
            [purchase.pk],
            reason="chargeback risk",
        )
    purchase.refresh_from_db()
    assert (purchase.revoked_at is not None, purchase.revoke_reason) == (True, "chargeback risk")
    assert list(
        AuditLogEntry.objects.filter(action="purchase.revoked").values_list("actor_repr", "reason")
    ) == [("support-op", "chargeback risk")]


def test_purchase_durations_are_read_only_in_the_admin(tenant_a):
    # access_days changes through catalog.services.products.product_update (audited, told to Stripe), not the admin.
    from catalog.models import ProductAccess

    access = ProductAccess.objects.create(product=product(tenant_a.project, "pass", {}), duration_days=30)
    admin_user = User.objects.create_superuser("root-op", password="pw")
    client = Client()
    client.force_login(admin_user)
    url = f"/admin/catalog/productaccess/{quote(access.pk)}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert client.post(url, {"product": access.product_id, "duration_days": 1}).status_code == 403
    assert (
        client.post(f"/admin/catalog/productaccess/{quote(access.pk)}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert client.get("/admin/catalog/productaccess/add/").status_code == 403
    access.refresh_from_db()
    assert access.duration_days == 30
    assert not AuditLogEntry.objects.exists()


def test_the_messages_spell_ids_as_they_are(tenant_a):
    """Django's admin capitalises every message; ours begin with an id ("grant_…", "user-a"), which must read as
    spelt: an operator copies it into a search."""
    feature(tenant_a.project, "reports")
    cust = customer(tenant_a.project, "user-a")
    ended = GrantFactory(project=tenant_a.project, customer=cust, deleted_at=EXPIRY)
    client = _login("support")
    _action(client, CUSTOMERS, "grant_entitlement", [cust.pk], feature="reports", reason="promo")
    _action(client, "/admin/entitlements/grant/", "end", [ended.pk], reason="done")
    page = client.get(CUSTOMERS).content.decode()
    granted = Grant.objects.exclude(pk=ended.pk).get()
    assert f'<li class="info">user-a: granted reports ({granted.pk})</li>' in page
    assert f'<li class="info">{ended.pk}: already ended</li>' in page
    assert "User-a" not in page
    assert ended.pk.capitalize() not in page
