"""The operators' roles and audited admin actions: each role logged in, each action with its reason."""

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from billing.models import Payment, Subscription
from core.models import AuditLogEntry
from projects.models import ApiKey, Project
from webhooks.models import StripeEvent

OK = "https://app.example.com/ok"


def _login(role: str) -> Client:
    user = User.objects.create_user(f"{role}-op", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


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


def _action(client, url, action, ids, **fields):
    return client.post(url, {"action": action, "_selected_action": ids, "apply": "1", **fields})


def test_the_three_roles_exist_with_their_permissions(db):
    support, finance, admin = (Group.objects.get(name=n) for n in ("support", "finance", "admin"))
    codes = lambda g: {p.codename for p in g.permissions.all()}  # noqa: E731
    assert "replay_stripeevent" in codes(support)
    assert "refund_payment" not in codes(support)
    assert {"replay_stripeevent", "refund_payment", "correct_invoice"} <= codes(finance)
    assert "correct_invoice" not in codes(support)
    assert "correct_invoice" in codes(admin)
    assert "view_payment" in codes(support)
    assert "change_payment" not in codes(finance)
    assert {"suspend_project", "manage_project_keys", "run_reconciliation", "manage_subscription"} <= codes(
        admin
    )


def test_finance_refunds_with_a_reason_and_it_is_audited(api, tenant_a, catalog, stripe_sdk):
    payment = _paid_payment(api, tenant_a, stripe_sdk)
    client = _login("finance")
    url = "/admin/billing/payment/"
    form = client.post(url, {"action": "refund", "_selected_action": [payment.pk]})
    assert form.status_code == 200
    assert b"reason" in form.content  # the intermediate page asks for it
    no_reason = _action(client, url, "refund", [payment.pk], amount="10.00")
    assert no_reason.status_code == 200  # re-rendered with the error; nothing refunded
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 0
    # The amount is typed in major units, as the page shows money: not a number, or a tenth of a cent, is refused.
    not_money = _action(client, url, "refund", [payment.pk], amount="ten", reason="customer asked")
    assert not_money.status_code == 200
    assert b"&#x27;ten&#x27; is not an amount such as 25.00." in not_money.content
    too_precise = _action(client, url, "refund", [payment.pk], amount="10.001", reason="customer asked")
    assert (
        "USD has 2 decimal places: &#x27;10.001&#x27; is not an amount of it."
        in client.get(too_precise["Location"]).content.decode()
    )
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 0
    assert not AuditLogEntry.objects.filter(action="payment.refund_requested").exists()
    done = _action(client, url, "refund", [payment.pk], amount="10.00", reason="customer asked")
    assert done.status_code == 302
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == ("partially_refunded", 1000)
    # The payment's id as it is spelt (Django's admin would capitalise it); the amounts are money, not minor units.
    message = f'<li class="info">{payment.pk}: refunded $10.00 of $30.00</li>'
    assert message in client.get(done["Location"]).content.decode()
    entry = AuditLogEntry.objects.get(action="payment.refund_requested")
    assert (entry.actor_type, entry.actor_repr, entry.reason) == ("user", "finance-op", "customer asked")


def test_support_cannot_refund(api, tenant_a, catalog, stripe_sdk):
    payment = _paid_payment(api, tenant_a, stripe_sdk)
    client = _login("support")
    page = client.get("/admin/billing/payment/")
    assert page.status_code == 200
    assert b'value="refund"' not in page.content
    _action(client, "/admin/billing/payment/", "refund", [payment.pk], reason="try")
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 0
    assert not AuditLogEntry.objects.filter(action="payment.refund_requested").exists()


def test_support_replays_stripe_events_with_a_reason(api, tenant_a, catalog, stripe_sdk, stripe_webhooks):
    _paid_payment(api, tenant_a, stripe_sdk)
    stripe_webhooks.deliver()
    event = StripeEvent.objects.filter(type="payment_intent.succeeded").get()
    client = _login("support")
    response = _action(client, "/admin/webhooks/stripeevent/", "replay", [event.pk], reason="verify fix")
    assert response.status_code == 302
    entry = AuditLogEntry.objects.get(action="stripe_event.replayed")
    assert (entry.target_id, entry.reason, entry.actor_repr) == (event.pk, "verify fix", "support-op")
    assert StripeEvent.objects.get(pk=event.pk).attempts == 2


def test_admin_suspends_and_reactivates_a_project(api, tenant_a):
    client = _login("admin")
    _action(client, "/admin/projects/project/", "suspend", [tenant_a.project.pk], reason="unpaid invoices")
    assert Project.objects.get(pk=tenant_a.project.pk).status == "suspended"
    assert api.get("/api/v1/project", key=tenant_a.key).status_code == 403
    _action(client, "/admin/projects/project/", "reactivate", [tenant_a.project.pk], reason="paid")
    assert Project.objects.get(pk=tenant_a.project.pk).status == "active"
    assert list(
        AuditLogEntry.objects.filter(target_id=tenant_a.project.pk)
        .order_by("created_at")
        .values_list("action", "reason")
    ) == [
        ("project.suspended", "unpaid invoices"),
        ("project.reactivated", "paid"),
    ]


def test_finance_cannot_suspend(api, tenant_a):
    client = _login("finance")
    _action(client, "/admin/projects/project/", "suspend", [tenant_a.project.pk], reason="no")
    assert Project.objects.get(pk=tenant_a.project.pk).status == "active"


def test_admin_rotates_a_key_and_sees_the_new_secret_once(api, tenant_a):
    client = _login("admin")
    response = _action(
        client, "/admin/projects/apikey/", "rotate", [tenant_a.api_key.pk], reason="leaked in a log"
    )
    follow = client.get(response["Location"])
    text = follow.content.decode()
    assert "copy it now" in text
    secret = text.split("it will not be shown again: ")[1].split("<")[0].strip()
    assert api.get("/api/v1/project", key=secret).status_code == 200
    assert api.get("/api/v1/project", key=tenant_a.key).status_code == 401
    assert ApiKey.objects.get(pk=tenant_a.api_key.pk).revoked_at is not None


def test_admin_cancels_a_subscription_at_period_end(api, tenant_a, catalog, stripe_emulator, stripe_webhooks):
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": "u", "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=tenant_a.key,
    ).json()
    stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{created['stripe_session_id']}/complete",
        query="",
        body=b"card=4242424242424242",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    stripe_webhooks.deliver()
    subscription = Subscription.objects.get()
    client = _login("admin")
    _action(
        client,
        "/admin/billing/subscription/",
        "cancel",
        [subscription.pk],
        reason="customer left",
        at_period_end="on",
    )
    stripe_webhooks.deliver()  # the mirror follows Stripe's events
    assert Subscription.objects.get().cancel_at_period_end is True
    entry = AuditLogEntry.objects.get(action="subscription.cancel_scheduled")
    assert entry.reason == "customer left"
    _action(client, "/admin/billing/subscription/", "resume", [subscription.pk], reason="came back")
    stripe_webhooks.deliver()
    assert Subscription.objects.get().cancel_at_period_end is False


@pytest.mark.parametrize(
    "path",
    [
        "/admin/billing/payment/",
        "/admin/billing/subscription/",
        "/admin/webhooks/stripeevent/",
        "/admin/core/auditlogentry/",
    ],
)
def test_every_role_can_read(db, path):
    for role in ("support", "finance", "admin"):
        assert _login(role).get(path).status_code == 200


def test_the_same_refund_form_submitted_twice_refunds_once(api, tenant_a, catalog, stripe_sdk):
    """The form carries an operation drawn when it is shown: a second submit (a double click, a retry after an
    error page) continues the first refund."""
    import re

    payment = _paid_payment(api, tenant_a, stripe_sdk)
    client = _login("finance")
    url = "/admin/billing/payment/"
    form = client.post(url, {"action": "refund", "_selected_action": [payment.pk]}).content.decode()
    operation = re.search(r'name="operation" value="([A-Za-z0-9]{24})"', form).group(1)
    for _ in range(2):
        done = _action(
            client, url, "refund", [payment.pk], amount="10.00", reason="asked", operation=operation
        )
        assert done.status_code == 302
    refunds = stripe_sdk().v1.refunds.list({"payment_intent": payment.stripe_payment_intent_id}).data
    assert [r.amount for r in refunds] == [1000]
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 1000
    # A newly shown form is a new operation: another refund.
    again = client.post(url, {"action": "refund", "_selected_action": [payment.pk]}).content.decode()
    other = re.search(r'name="operation" value="([A-Za-z0-9]{24})"', again).group(1)
    assert other != operation
    _action(client, url, "refund", [payment.pk], amount="5.00", reason="more", operation=other)
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 1500


def test_a_failed_refund_says_why_in_words(api, tenant_a, catalog, stripe_sdk):
    from billing.models import Refund

    payment = _paid_payment(api, tenant_a, stripe_sdk)
    refund = Refund.objects.create(
        project=tenant_a.project,
        payment=payment,
        amount=400,
        currency="usd",
        status="failed",
        stripe_refund_id="re_failed",
        failure_reason="expired_or_canceled_card",
        operation="api:internal",
    )
    page = _login("support").get(f"/admin/billing/refund/{refund.pk}/change/").content.decode()
    assert "Why it failed" in page
    assert "The card has expired or was canceled" in page
    assert "expired_or_canceled_card" not in page
    assert "api:internal" not in page  # the operation is an internal key
