"""Wire format: form decoding, authentication, Stripe error bodies."""

from __future__ import annotations

import json

import pytest
import stripe

from stripe_emulator import Emulator
from stripe_emulator.core.params import decode_form
from stripe_emulator.sdk import make_client


def test_decode_form_nests_brackets_lists_and_metadata() -> None:
    raw = (
        "line_items[0][price]=price_1&line_items[0][quantity]=2&line_items[1][price]=price_2"
        "&metadata[k]=v&metadata[0]=zero&expand[]=a&expand[]=b&ids[0]=x&ids[1]=y&recurring[interval]=month&plain="
    )
    assert decode_form(raw) == {
        "line_items": [{"price": "price_1", "quantity": "2"}, {"price": "price_2"}],
        "metadata": {"k": "v", "0": "zero"},  # digit keys under metadata stay keys
        "expand": ["a", "b"],
        "ids": ["x", "y"],
        "recurring": {"interval": "month"},
        "plain": "",
    }


def test_missing_key_is_401(emulator: Emulator) -> None:
    response = emulator.handle("GET", "/v1/customers")
    assert response.status == 401
    assert response.data()["error"]["type"] == "invalid_request_error"
    assert "API key" in response.data()["error"]["message"]


def test_bad_key_is_401_through_the_sdk(emulator: Emulator) -> None:
    with pytest.raises(stripe.AuthenticationError, match="Invalid API Key"):
        make_client(emulator, "sk_live_nope").v1.customers.list()


def test_basic_auth_like_curl_u(emulator: Emulator) -> None:
    import base64

    token = base64.b64encode(b"sk_test_curl:").decode()
    assert emulator.handle("GET", "/v1/customers", headers={"Authorization": f"Basic {token}"}).status == 200


def test_unknown_url_is_404(emulator: Emulator) -> None:
    response = emulator.handle("GET", "/v1/nope", headers={"Authorization": "Bearer sk_test_x"})
    assert response.status == 404
    assert "Unrecognized request URL (GET: /v1/nope)" in response.data()["error"]["message"]


def test_resource_missing_is_404_with_param_id(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.retrieve("cus_missing")
    assert info.value.http_status == 404
    assert info.value.code == "resource_missing"
    assert info.value.param == "id"
    assert info.value.user_message == "No such customer: 'cus_missing'"
    assert info.value.json_body is not None
    assert info.value.json_body["error"]["doc_url"].endswith("/resource_missing")


def test_missing_required_param_is_400_naming_it(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.prices.create({"unit_amount": 100, "product_data": {"name": "x"}})
    assert info.value.http_status == 400
    assert info.value.param == "currency"
    assert info.value.code == "parameter_missing"


def test_nested_param_errors_name_the_bracketed_param(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.prices.create(
            {
                "currency": "usd",
                "unit_amount": 1,
                "product_data": {"name": "x"},
                "recurring": {"interval": "fortnight"},
            }
        )
    assert info.value.param == "recurring[interval]"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.customers.create({"colour": "blue"})
    assert unknown.value.param == "colour"
    assert unknown.value.code == "parameter_unknown"


def test_invalid_integer(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.list({"limit": 1000})
    assert info.value.param == "limit"


def test_handler_bug_becomes_500_api_error(emulator: Emulator) -> None:
    from stripe_emulator import Route

    def broken(request: object) -> object:
        raise RuntimeError("boom")

    emulator.add_route(Route("GET", "/v1/broken", broken))
    response = emulator.handle("GET", "/v1/broken", headers={"Authorization": "Bearer sk_test_x"})
    assert response.status == 500
    assert response.data()["error"]["type"] == "api_error"


def test_json_bodies_are_accepted_like_forms(emulator: Emulator) -> None:
    response = emulator.handle(
        "POST",
        "/v1/customers",
        body=json.dumps({"email": "j@example.com", "metadata": {"a": 1}}).encode(),
        headers={"Authorization": "Bearer sk_test_x", "Content-Type": "application/json"},
    )
    assert response.status == 200
    assert response.data()["metadata"] == {"a": "1"}
