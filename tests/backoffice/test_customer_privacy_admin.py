"""The customer page's privacy requests: the operator downloads the export document and erases the customer,
each audited with the operator; without the permission, nothing happens."""

import json

from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission, User
from django.test import Client

from core.models import AuditLogEntry
from customers.models import Customer

CUSTOMERS = "/admin/customers/customer/"
EMAIL = "ada.admin-privacy@example.org"
NAME = "Ada Adminprivacy"


def _operator(*codenames: str) -> tuple[User, Client]:
    user = User.objects.create_user("op", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_customer", *codenames]))
    client = Client()
    client.force_login(user)
    return user, client


def _customer(api, tenant) -> Customer:
    body = {"external_id": "user-ada", "email": EMAIL, "name": NAME}
    assert api.post("/api/v1/customers", body, key=tenant.key).status_code == 201
    return Customer.objects.get(external_id="user-ada")


def test_operator_downloads_the_export_and_erases_from_the_customer_page(api, tenant_a):
    customer = _customer(api, tenant_a)
    user, client = _operator("export_customer_data", "erase_customer_data")
    page = client.get(f"{CUSTOMERS}{quote(customer.pk)}/change/")
    assert b"Download personal data" in page.content
    assert b"Erase personal data" in page.content

    download = client.get(f"{CUSTOMERS}{quote(customer.pk)}/export/")
    assert download.status_code == 200
    assert download["Content-Disposition"] == f'attachment; filename="customer-{customer.pk}.json"'
    document = json.loads(b"".join(download.streaming_content))
    assert (document["object"], document["customer"]["email"], document["customer"]["name"]) == (
        "customer_export",
        EMAIL,
        NAME,
    )
    exported = AuditLogEntry.objects.get(action="customer.exported")
    assert (exported.actor_type, exported.actor_id, exported.target_id) == ("user", str(user.pk), customer.pk)

    form = client.get(f"{CUSTOMERS}{quote(customer.pk)}/erase/")
    assert form.status_code == 200
    assert b"reason" in form.content
    done = client.post(f"{CUSTOMERS}{quote(customer.pk)}/erase/", {"apply": "1", "reason": "ticket 881"})
    assert done.status_code == 302
    customer.refresh_from_db()
    assert (customer.email, customer.name) == ("", "")
    assert customer.erased_at is not None
    assert customer.external_id.startswith("erased_")
    erased = AuditLogEntry.objects.get(action="customer.erased")
    assert (erased.actor_type, erased.actor_id, erased.reason) == ("user", str(user.pk), "ticket 881")
    # The erased customer's page offers neither again, and its fields can no longer be edited.
    page = client.get(f"{CUSTOMERS}{quote(customer.pk)}/change/")
    assert f"{quote(customer.pk)}/erase/".encode() not in page.content
    assert f"{quote(customer.pk)}/export/".encode() not in page.content
    assert b'name="email"' not in page.content


def test_without_the_permissions_nothing_is_exported_or_erased(api, tenant_a):
    customer = _customer(api, tenant_a)
    _, client = _operator()
    page = client.get(f"{CUSTOMERS}{quote(customer.pk)}/change/")
    assert b"Download personal data" not in page.content
    assert b"Erase personal data" not in page.content
    assert client.get(f"{CUSTOMERS}{quote(customer.pk)}/export/").status_code == 403
    denied = client.post(f"{CUSTOMERS}{quote(customer.pk)}/erase/", {"apply": "1", "reason": "ticket 881"})
    assert denied.status_code == 403
    listed = client.post(
        CUSTOMERS,
        {"action": "erase_personal_data", "_selected_action": [customer.pk], "apply": "1", "reason": "x"},
    )
    assert listed.status_code in (200, 302)
    customer.refresh_from_db()
    assert (customer.email, customer.name, customer.erased_at) == (EMAIL, NAME, None)
    assert not AuditLogEntry.objects.filter(action__in=["customer.exported", "customer.erased"]).exists()


def test_the_list_action_erases_with_a_reason(api, tenant_a):
    customer = _customer(api, tenant_a)
    _, client = _operator("erase_customer_data")
    response = client.post(
        CUSTOMERS,
        {
            "action": "erase_personal_data",
            "_selected_action": [customer.pk],
            "apply": "1",
            "reason": "dsr-12",
        },
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.email, customer.name) == ("", "")
    assert AuditLogEntry.objects.get(action="customer.erased").reason == "dsr-12"
