"""Results and errors built from the wire, without a server: what a newer server sends must not break an older
client, and what is not the envelope still gives the right error class."""

import time

import httpx
import pytest
from tollgate_client import (
    APIError,
    CardError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    Tollgate,
)
from tollgate_client.errors import error_from_response, parse_retry_after
from tollgate_client.types import CustomerEntitlements, Event, Invoice, Payment
from tollgate_client.webhooks import construct_event

from events.signing import signature_header


def test_unknown_fields_are_kept_not_fatal():
    payment = Payment.from_dict(
        {
            "id": "pay_1",
            "object": "payment",
            "status": "succeeded",
            "amount": 1500,
            "currency": "usd",
            "items": [{"price_key": "credits-1000", "quantity": 1, "unit_amount": 1500, "tax_code": "x"}],
            "loyalty_points": 15,
        }
    )
    assert (payment.amount, payment.items[0].price_key) == (1500, "credits-1000")
    assert payment.extra == {"loyalty_points": 15}
    assert payment.items[0].extra == {"tax_code": "x"}
    assert payment.raw["loyalty_points"] == 15
    assert payment.to_dict()["object"] == "payment"
    assert payment.client_secret is None  # left out by the server for the checkout flow


def test_nested_lists_of_objects_are_typed():
    invoice = Invoice.from_dict(
        {"id": "in_1", "lines": [{"description": "Pro", "amount": 3000, "currency": "usd"}]}
    )
    assert invoice.lines[0].amount == 3000
    entitlements = CustomerEntitlements.from_dict(
        {"customer": "user-1", "entitlements": [{"feature": "sso", "type": "boolean", "enabled": True}]}
    )
    assert entitlements.get("sso").enabled is True
    assert entitlements.get("nothing") is None


def test_results_are_frozen():
    payment = Payment.from_dict({"id": "pay_1"})
    with pytest.raises(AttributeError):
        payment.status = "succeeded"


def test_an_event_is_the_same_type_from_a_delivery_and_from_the_api():
    body = (
        b'{"id":"evt_1","object":"event","type":"payment.succeeded","created":"2026-11-22T10:00:00Z",'
        b'"project":"proj_1","sequence":7,"data":{"object":{"id":"pay_1"}},"new_field":1}'
    )
    header = signature_header(body=body, secrets=["whsec_a"], timestamp=int(time.time()))
    delivered = construct_event(body, header, "whsec_a")
    listed = Event.from_dict({**delivered.raw, "deliveries": [{"id": "dlv_1", "status": "succeeded"}]})
    assert type(delivered) is type(listed) is Event
    assert (delivered.id, delivered.sequence, delivered.data) == (listed.id, listed.sequence, listed.data)
    assert (delivered.deliveries, listed.deliveries[0].status) == ([], "succeeded")  # only the API has them
    assert delivered.object == {"id": "pay_1"}
    assert delivered.extra == {"new_field": 1}


def _response(status, body=b"", headers=None):
    return httpx.Response(status, content=body, headers=headers or {})


def test_error_envelope_fields():
    error = error_from_response(
        _response(
            402,
            b'{"error":{"type":"card_error","code":"card_declined","message":"Declined.","param":null,'
            b'"decline_code":"insufficient_funds"}}',
            {"X-Request-Id": "req_1"},
        )
    )
    assert isinstance(error, CardError)
    assert (error.status, error.type, error.code, error.param, error.request_id, error.decline_code) == (
        402,
        "card_error",
        "card_declined",
        None,
        "req_1",
        "insufficient_funds",
    )
    assert str(error) == "Declined. (status 402, code card_declined, request_id req_1)"


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, InvalidRequestError), (404, NotFoundError), (413, InvalidRequestError), (418, APIError)],
)
def test_a_body_that_is_not_the_envelope(status, cls):
    error = error_from_response(_response(status, b"<html>Bad gateway</html>"))
    assert isinstance(error, cls)
    assert (error.status, error.code, error.message) == (status, None, "<html>Bad gateway</html>")


def test_retry_after_forms():
    assert parse_retry_after("12") == 12
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    in_a_while = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < parse_retry_after(in_a_while) <= 30
    error = error_from_response(_response(429, b"{}", {"Retry-After": "7"}))
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 7


def test_base_url_with_or_without_the_api_prefix():
    assert Tollgate("tg_sk_x", "https://t.example.com/").base_url == "https://t.example.com/api/v1"
    assert Tollgate("tg_sk_x", "https://t.example.com/api/v1/").base_url == "https://t.example.com/api/v1"
    with pytest.raises(ValueError, match="base_url"):
        Tollgate("tg_sk_x", "t.example.com")
    with pytest.raises(ValueError, match="api_key"):
        Tollgate("", "https://t.example.com")


def test_with_options_shares_the_pool_and_changes_only_what_is_asked():
    client = Tollgate("tg_sk_x", "https://t.example.com", timeout=5, max_retries=3)
    quick = client.with_options(max_retries=0)
    assert (quick.max_retries, quick.timeout, client.max_retries) == (0, 5, 3)
    quick.close()  # does not close the shared pool
    assert not client._transport._client.is_closed
    client.close()
    assert client._transport._client.is_closed
