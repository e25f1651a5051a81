"""An Idempotency-Key header that is there but says nothing (`$(uuidgen)` where uuidgen is not installed sends
`Idempotency-Key: `) is refused before anything is done: it names no operation, so a retry could not be told from
a new request."""

import pytest

from catalog.models import Product
from core.models import AuditLogEntry, IdempotencyKey


@pytest.mark.parametrize("key", ["", " ", "   ", "\t"])
def test_an_empty_or_blank_key_is_refused_and_nothing_is_done(api, tenant_a, stripe_sdk, key):
    response = api.post(
        "/api/v1/products",
        {"key": "pro", "name": "Pro"},
        key=tenant_a.key,
        headers={"Idempotency-Key": key},
    )

    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "code": "idempotency_key_empty",
        "message": (
            "Idempotency-Key is empty. Send a unique string for each operation (a UUID), or leave the "
            "header out."
        ),
        "param": "Idempotency-Key",
    }
    assert not Product.objects.exists()
    assert not IdempotencyKey.objects.exists()
    assert not AuditLogEntry.objects.filter(project_id=tenant_a.project.pk).exists()
    assert stripe_sdk().v1.products.list().data == []


def test_a_key_of_one_character_is_taken(api, tenant_a):
    response = api.post(
        "/api/v1/products", {"key": "pro", "name": "Pro"}, key=tenant_a.key, headers={"Idempotency-Key": "x"}
    )

    assert response.status_code == 201
    assert list(Product.objects.values_list("key", flat=True)) == ["pro"]
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["x"]
