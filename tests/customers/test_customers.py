"""Customers: upsert by external id, per-project isolation, lazy Stripe customer."""

import pytest

from customers.models import Customer
from customers.services.customers import customer_ensure_stripe


def test_create_then_update_by_external_id(api, tenant_a):
    created = api.post(
        "/api/v1/customers",
        {"external_id": "user-1", "email": "a@example.com", "metadata": {"plan": "x"}},
        key=tenant_a.key,
    )
    assert created.status_code == 201
    body = created.json()
    assert body["object"] == "customer"
    assert body["id"].startswith("cust_")
    assert body["external_id"] == "user-1"
    assert body["email"] == "a@example.com"
    assert body["metadata"] == {"plan": "x"}
    assert body["currency"] is None
    assert body["stripe_customer_id"] is None

    updated = api.post(
        "/api/v1/customers",
        {"external_id": "user-1", "name": "Ada", "metadata": {"team": "t"}},
        key=tenant_a.key,
    )
    assert updated.status_code == 200
    assert updated.json()["id"] == body["id"]
    assert updated.json()["name"] == "Ada"
    assert updated.json()["email"] == "a@example.com"
    assert updated.json()["metadata"] == {"plan": "x", "team": "t"}
    assert Customer.objects.count() == 1


def test_same_user_in_two_projects_is_two_customers(api, tenant_a, tenant_b):
    a = api.post("/api/v1/customers", {"external_id": "same"}, key=tenant_a.key).json()
    b = api.post("/api/v1/customers", {"external_id": "same"}, key=tenant_b.key).json()
    assert a["id"] != b["id"]
    assert api.get("/api/v1/customers/same", key=tenant_a.key).json()["id"] == a["id"]
    assert api.get("/api/v1/customers/same", key=tenant_b.key).json()["id"] == b["id"]


def test_get_unknown_or_other_projects_customer_is_404(api, tenant_a, tenant_b):
    api.post("/api/v1/customers", {"external_id": "only-b"}, key=tenant_b.key)
    response = api.get("/api/v1/customers/only-b", key=tenant_a.key)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "external_id"),
        ({"external_id": "x", "email": "nope"}, "email"),
        ({"external_id": "x", "metadata": "m"}, "metadata"),
        ({"external_id": "x", "nickname": "n"}, "nickname"),
    ],
)
def test_bad_input_is_400_and_writes_nothing(api, tenant_a, body, param):
    response = api.post("/api/v1/customers", body, key=tenant_a.key)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert Customer.objects.count() == 0


def test_list_filters_by_email_and_paginates(api, tenant_a, tenant_b):
    for i in range(3):
        api.post(
            "/api/v1/customers", {"external_id": f"u{i}", "email": f"u{i}@example.com"}, key=tenant_a.key
        )
    api.post("/api/v1/customers", {"external_id": "other", "email": "u1@example.com"}, key=tenant_b.key)
    listed = api.get("/api/v1/customers", key=tenant_a.key, json_body={"limit": 2}).json()
    assert len(listed["data"]) == 2
    assert listed["has_more"] is True
    filtered = api.get("/api/v1/customers", key=tenant_a.key, json_body={"email": "u1@example.com"}).json()
    assert [c["external_id"] for c in filtered["data"]] == ["u1"]


def test_stripe_customer_is_created_lazily_once_with_metadata(
    api, tenant_a, stripe_sdk, django_capture_on_commit_callbacks
):
    api.post("/api/v1/customers", {"external_id": "lazy", "email": "l@example.com"}, key=tenant_a.key)
    sdk = stripe_sdk()
    assert len(sdk.v1.customers.list().data) == 0
    customer = Customer.objects.get(external_id="lazy")
    stripe_id = customer_ensure_stripe(customer=customer)
    assert customer_ensure_stripe(customer=Customer.objects.get(pk=customer.pk)) == stripe_id
    stripe_customers = sdk.v1.customers.list().data
    assert [c.id for c in stripe_customers] == [stripe_id]
    assert stripe_customers[0].email == "l@example.com"
    assert stripe_customers[0].metadata.to_dict() == {
        "tollgate_project": tenant_a.project.pk,
        "tollgate_customer": customer.pk,
        "external_id": "lazy",
    }
    # A later change of email reaches Stripe (through the on-commit task).
    api.post("/api/v1/customers", {"external_id": "lazy", "email": "new@example.com"}, key=tenant_a.key)
    assert sdk.v1.customers.retrieve(stripe_id).email == "new@example.com"


def test_a_stripe_customer_is_routed_to_its_accounts_customer_by_one_compiled_read(
    tenant_a, tenant_b, django_assert_num_queries
):
    """Every Stripe event of a customer reads the customers holding its Stripe id (customers/statements.py): the
    one of the event's account answers, with its project loaded, one statement a call, compiled at most once
    per connection."""
    from core.statements import statements_compiled
    from customers.services.customers import customer_for_stripe
    from stripe_gateway.gateway import PLATFORM_ACCOUNT

    tenant_b.project.stripe_secret_key = "sk_test_bravo_own_account"
    tenant_b.project.save(update_fields=["stripe_secret_key"])
    on_platform = Customer.objects.create(
        project=tenant_a.project, external_id="u1", stripe_customer_id="cus_same"
    )
    own = Customer.objects.create(project=tenant_b.project, external_id="u1", stripe_customer_id="cus_same")
    Customer.objects.create(project=tenant_a.project, external_id="u2", stripe_customer_id="cus_other")
    before = statements_compiled()
    with django_assert_num_queries(3):
        platform = customer_for_stripe(account=PLATFORM_ACCOUNT, stripe_customer_id="cus_same")
        bravo = customer_for_stripe(account=str(tenant_b.project.pk), stripe_customer_id="cus_same")
        unknown = customer_for_stripe(account=PLATFORM_ACCOUNT, stripe_customer_id="cus_unknown")
        assert platform is not None
        assert bravo is not None
        assert (platform.pk, platform.project.slug) == (on_platform.pk, "alpha")
        assert (bravo.pk, bravo.project.slug) == (own.pk, "bravo")
        assert unknown is None
    assert statements_compiled() - before in (
        0,
        1,
    )  # compiled on this connection by this test or an earlier one
