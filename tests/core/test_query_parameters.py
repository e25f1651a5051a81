"""Each operation takes exactly the query parameters its OpenAPI schema lists; any other is a 400 naming it."""

import pytest

from customers.models import Customer

pytestmark = pytest.mark.django_db


def _error(response):
    return response.status_code, response.json()["error"]["code"], response.json()["error"]["param"]


def test_a_misspelt_filter_is_refused_instead_of_listing_everything(api, tenant_a):
    api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant_a.key)
    response = api.request("GET", "/api/v1/payments?custmer=user-1", key=tenant_a.key)
    assert _error(response) == (400, "unknown_parameter", "custmer")
    assert "customer" in response.json()["error"]["message"]  # the message lists what the operation takes


def test_a_declared_filter_is_taken(api, tenant_a):
    response = api.request("GET", "/api/v1/payments?customer=user-1&limit=5", key=tenant_a.key)
    assert (response.status_code, response.json()["data"]) == (200, [])


def test_the_hot_path_refuses_an_extra_parameter(api, tenant_a):
    response = api.request(
        "GET", "/api/v1/entitlements/check?customer=u1&feature=f1&featur=f2", key=tenant_a.key
    )
    assert _error(response) == (400, "unknown_parameter", "featur")


def test_a_write_with_a_query_string_is_refused_and_writes_nothing(api, tenant_a):
    response = api.post("/api/v1/customers?dry_run=1", {"external_id": "user-1"}, key=tenant_a.key)
    assert _error(response) == (400, "unknown_parameter", "dry_run")
    assert Customer.objects.count() == 0


def test_a_bad_key_is_refused_before_the_parameters_are_read(api, tenant_a):
    response = api.request("GET", "/api/v1/payments?custmer=x", key="tg_sk_not_a_key")
    assert response.status_code == 401
