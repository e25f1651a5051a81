"""Checkout Sessions through the SDK and the hosted page: payment and subscription mode, declines,
3-D Secure, expiry (explicit, by advance, lazily), line items, and the HTML page over real HTTP."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import stripe

from stripe_emulator import Emulator
from stripe_emulator.server import EmulatorServer
from tests.stripe_emulator.conftest import KEY_A, FakeClock
from tests.stripe_emulator.payments_fixtures import as_dict, control, event_types, events_of

SUCCESS = "https://shop.example/done?session={CHECKOUT_SESSION_ID}"


def _one_time(client: stripe.StripeClient, amount: int = 1500, name: str = "Widget") -> stripe.Price:
    return client.v1.prices.create({"currency": "usd", "unit_amount": amount, "product_data": {"name": name}})


def _monthly(client: stripe.StripeClient, amount: int = 900) -> stripe.Price:
    return client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": amount,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Pro"},
        }
    )


def _payment_session(client: stripe.StripeClient, **extra: Any) -> stripe.checkout.Session:
    price = _one_time(client)
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {"price": price.id, "quantity": 2},
            {
                "price_data": {"currency": "usd", "unit_amount": 250, "product_data": {"name": "Gift wrap"}},
                "quantity": 1,
            },
        ],
        "success_url": SUCCESS,
        "cancel_url": "https://shop.example/cart",
        **extra,
    }
    return client.v1.checkout.sessions.create(params)


def _complete(emulator: Emulator, session_id: str, **form: str) -> Any:
    return control(emulator, f"/_emulator/checkout/sessions/{session_id}/complete", **form)


def test_payment_mode_end_to_end(emulator: Emulator, client: stripe.StripeClient) -> None:
    session = _payment_session(
        client,
        client_reference_id="order-9",
        metadata={"cart": "9"},
        payment_intent_data={"metadata": {"order": "9"}},
    )
    assert (session.status, session.payment_status, session.mode) == ("open", "unpaid", "payment")
    assert session.amount_subtotal == session.amount_total == 2 * 1500 + 250
    assert session.url == f"http://stripe-emulator.invalid/checkout/pay/{session.id}"
    assert session.customer is None
    assert session.customer_creation == "if_required"
    assert session.payment_intent is None

    answer = _complete(emulator, session.id, email="buyer@example.com")
    assert answer.status == 200
    body = answer.data()
    assert (body["status"], body["payment_status"]) == ("complete", "paid")
    assert body["url"] is None
    assert body["customer_details"]["email"] == "buyer@example.com"
    assert body["customer"] is None  # customer_creation=if_required: a guest payment

    retrieved = client.v1.checkout.sessions.retrieve(session.id)
    assert as_dict(retrieved) == body
    pi = client.v1.payment_intents.retrieve(retrieved.payment_intent)
    assert (pi.status, pi.amount, pi.amount_received) == ("succeeded", 3250, 3250)
    assert as_dict(pi.metadata) == {"order": "9"}

    types = event_types(client)
    tail = types[types.index("payment_intent.created") :]
    assert tail == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    completed = events_of(client, "checkout.session.completed")[0]
    assert as_dict(completed.data.object) == as_dict(retrieved)
    assert completed.data.object.client_reference_id == "order-9"

    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)
    assert _complete(emulator, session.id).status == 400


def test_customer_creation_always_and_existing_customer(
    emulator: Emulator, client: stripe.StripeClient
) -> None:
    always = _payment_session(client, customer_creation="always", customer_email="new@example.com")
    body = _complete(emulator, always.id).data()
    customer = client.v1.customers.retrieve(body["customer"])
    assert customer.email == "new@example.com"
    assert client.v1.payment_intents.retrieve(body["payment_intent"]).customer == customer.id

    existing = client.v1.customers.create({"email": "old@example.com"})
    session = _payment_session(client, customer=existing.id)
    body = _complete(emulator, session.id).data()
    assert body["customer"] == existing.id
    assert body["customer_details"]["email"] == "old@example.com"
    assert [s.id for s in client.v1.checkout.sessions.list({"customer": existing.id}).data] == [session.id]


def test_decline_keeps_the_session_open(emulator: Emulator, client: stripe.StripeClient) -> None:
    session = _payment_session(client)
    declined = _complete(emulator, session.id, card="4000000000009995")
    assert declined.status == 402
    error = declined.data()["error"]
    assert (error["type"], error["code"], error["decline_code"]) == (
        "card_error",
        "card_declined",
        "insufficient_funds",
    )
    assert error["payment_intent"]["status"] == "requires_payment_method"
    open_session = client.v1.checkout.sessions.retrieve(session.id)
    assert open_session.status == "open"
    assert open_session.payment_intent == error["payment_intent"]["id"]
    assert (
        _complete(emulator, session.id, card="4242424242424241").data()["error"]["code"] == "incorrect_number"
    )

    paid = _complete(emulator, session.id, card="4242 4242 4242 4242").data()
    assert paid["status"] == "complete"
    assert paid["payment_intent"] == error["payment_intent"]["id"]  # the same intent, retried
    assert "checkout.session.completed" in event_types(client)


def test_three_d_secure_in_payment_mode(emulator: Emulator, client: stripe.StripeClient) -> None:
    session = _payment_session(client)
    pending = _complete(emulator, session.id, card="4000002760003184")
    assert pending.status == 200
    assert pending.data()["status"] == "open"
    pi_id = pending.data()["payment_intent"]
    assert client.v1.payment_intents.retrieve(pi_id).status == "requires_action"
    control(emulator, f"/_emulator/payment_intents/{pi_id}/authenticate", outcome="succeed")
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert event_types(client)[-1] == "checkout.session.completed"


def test_failed_authentication_then_another_card(emulator: Emulator, client: stripe.StripeClient) -> None:
    session = _payment_session(client)
    _complete(emulator, session.id, card="4000002760003184")
    failed = control(emulator, f"/_emulator/checkout/sessions/{session.id}/authenticate", outcome="fail")
    assert failed.status == 402
    assert failed.data()["error"]["code"] == "payment_intent_authentication_failure"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert _complete(emulator, session.id).data()["status"] == "complete"


def test_subscription_mode(emulator: Emulator, client: stripe.StripeClient) -> None:
    price = _monthly(client)
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 2}],
            "customer_email": "sub@example.com",
            "subscription_data": {"metadata": {"plan": "pro"}},
            "success_url": SUCCESS,
        }
    )
    assert session.amount_total == 1800
    body = _complete(emulator, session.id).data()
    assert (body["status"], body["payment_status"]) == ("complete", "paid")
    assert body["subscription"].startswith("sub_")
    assert body["invoice"].startswith("in_")
    store = emulator.account(KEY_A).store
    subscription = store.get("subscription", body["subscription"])
    assert subscription is not None
    assert subscription["status"] == "active"
    assert subscription["metadata"] == {"plan": "pro"}
    customer = client.v1.customers.retrieve(body["customer"])
    assert customer.email == "sub@example.com"
    assert customer.invoice_settings.default_payment_method == subscription["default_payment_method"]
    assert event_types(client)[-1] == "checkout.session.completed"
    listed = client.v1.checkout.sessions.list({"subscription": body["subscription"]}).data
    assert [s.id for s in listed] == [session.id]


def test_subscription_mode_with_trial_needs_no_payment(
    emulator: Emulator, client: stripe.StripeClient
) -> None:
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 500,
                        "recurring": {"interval": "month"},
                        "product_data": {"name": "Inline plan"},
                    },
                    "quantity": 1,
                }
            ],
            "subscription_data": {"trial_period_days": 14},
        }
    )
    body = _complete(emulator, session.id, card="4000000000000341").data()
    assert (body["status"], body["payment_status"]) == ("complete", "no_payment_required")
    subscription = emulator.account(KEY_A).store.get("subscription", body["subscription"])
    assert subscription is not None
    assert subscription["status"] == "trialing"


def test_subscription_mode_decline_creates_nothing(emulator: Emulator, client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(
        {"mode": "subscription", "line_items": [{"price": _monthly(client).id, "quantity": 1}]}
    )
    declined = _complete(emulator, session.id, card="4000000000000341")
    assert declined.status == 402
    assert emulator.account(KEY_A).store.newest_first("subscription") == []
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_subscription_mode_three_d_secure(emulator: Emulator, client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(
        {"mode": "subscription", "line_items": [{"price": _monthly(client).id, "quantity": 1}]}
    )
    pending = _complete(emulator, session.id, card="4000002760003184").data()
    assert pending["status"] == "open"
    assert pending["subscription"] is None
    answer = control(emulator, f"/_emulator/checkout/sessions/{session.id}/authenticate")
    assert answer.status == 200
    body = answer.data()
    assert (body["status"], body["payment_status"]) == ("complete", "paid")
    assert body["subscription"].startswith("sub_")


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"mode": "payment", "line_items": [{"price": "RECURRING", "quantity": 1}]}, "line_items[0]"),
        ({"mode": "subscription", "line_items": [{"price": "ONE_TIME", "quantity": 1}]}, "line_items"),
        ({"mode": "payment", "line_items": [{"price": "ONE_TIME"}]}, "line_items[0][quantity]"),
        (
            {"mode": "payment", "line_items": [{"price": "price_missing", "quantity": 1}]},
            "line_items[0][price]",
        ),
        (
            {"mode": "payment", "line_items": [{"price": "ONE_TIME", "quantity": 1}], "expires_at": "NOW+60"},
            "expires_at",
        ),
        (
            {
                "mode": "payment",
                "line_items": [{"price": "ONE_TIME", "quantity": 1}],
                "expires_at": "NOW+90000",
            },
            "expires_at",
        ),
        (
            {
                "mode": "payment",
                "line_items": [{"price": "ONE_TIME", "quantity": 1}],
                "customer": "CUSTOMER",
                "customer_email": "x@example.com",
            },
            "customer_email",
        ),
        (
            {
                "mode": "payment",
                "line_items": [{"price": "ONE_TIME", "quantity": 1}],
                "subscription_data": {"trial_period_days": 3},
            },
            "subscription_data",
        ),
        ({"mode": "payment"}, "line_items"),
    ],
)
def test_create_validation(
    client: stripe.StripeClient, clock: FakeClock, params: dict[str, Any], param: str
) -> None:
    one_time, recurring = _one_time(client), _monthly(client)
    customer = client.v1.customers.create()
    names = {"RECURRING": recurring.id, "ONE_TIME": one_time.id, "CUSTOMER": customer.id}
    now = int(clock.now)

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, str) and value.startswith("NOW+"):
            return now + int(value[4:])
        return names.get(value, value) if isinstance(value, str) else value

    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.checkout.sessions.create(fill(params))
    assert err.value.error.param == param
    assert client.v1.checkout.sessions.list().data == []


def test_expire_explicitly(client: stripe.StripeClient, emulator: Emulator) -> None:
    session = _payment_session(client)
    _complete(emulator, session.id, card="4000000000000002")  # a failed attempt leaves an open intent
    expired = client.v1.checkout.sessions.expire(session.id)
    assert (expired.status, expired.url) == ("expired", None)
    assert as_dict(events_of(client, "checkout.session.expired")[0].data.object) == as_dict(expired)
    assert client.v1.payment_intents.retrieve(expired.payment_intent).status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)
    assert _complete(emulator, session.id).status == 400
    assert [s.id for s in client.v1.checkout.sessions.list({"status": "expired"}).data] == [session.id]


def test_expire_by_advance_and_lazily(
    emulator: Emulator, client: stripe.StripeClient, clock: FakeClock
) -> None:
    soon = _payment_session(client, expires_at=int(clock.now) + 1800)
    later = _payment_session(client)
    emulator.advance(1801)
    assert client.v1.checkout.sessions.retrieve(soon.id).status == "expired"
    assert client.v1.checkout.sessions.retrieve(later.id).status == "open"
    expired_event = events_of(client, "checkout.session.expired")[0]
    assert expired_event.request.id is None

    # Without an advance (the injected clock simply moves on) a read notices the expiry too.
    clock.now += 24 * 3600
    assert client.v1.checkout.sessions.retrieve(later.id).status == "expired"
    assert len(events_of(client, "checkout.session.expired")) == 2


def test_line_items_list(client: stripe.StripeClient) -> None:
    session = _payment_session(client)
    items = client.v1.checkout.sessions.line_items.list(session.id)
    assert [(i.description, i.quantity, i.amount_total) for i in items.data] == [
        ("Widget", 2, 3000),
        ("Gift wrap", 1, 250),
    ]
    assert items.data[0].object == "item"
    assert items.data[0].price.unit_amount == 1500
    assert sum(i.amount_total for i in items.data) == session.amount_total
    first = client.v1.checkout.sessions.line_items.list(session.id, {"limit": 1})
    assert first.has_more is True
    rest = client.v1.checkout.sessions.line_items.list(
        session.id, {"limit": 1, "starting_after": first.data[0].id}
    )
    assert [i.description for i in rest.data] == ["Gift wrap"]
    # Inline prices are created inactive, as Stripe does.
    assert client.v1.prices.retrieve(items.data[1].price.id).active is False


def test_session_list_filters(emulator: Emulator, client: stripe.StripeClient) -> None:
    a = _payment_session(client)
    b = _payment_session(client)
    paid = _complete(emulator, a.id).data()
    assert [
        s.id for s in client.v1.checkout.sessions.list({"payment_intent": paid["payment_intent"]}).data
    ] == [a.id]
    assert [s.id for s in client.v1.checkout.sessions.list({"status": "open"}).data] == [b.id]
    assert [s.id for s in client.v1.checkout.sessions.list().data] == [b.id, a.id]
    by_email = client.v1.checkout.sessions.list({"customer_details": {"email": "customer@example.com"}})
    assert [s.id for s in by_email.data] == [a.id]


# -- the hosted page over real HTTP ----------------------------------------------------------------------


def _http(
    server: EmulatorServer, method: str, path: str, form: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    connection = http.client.HTTPConnection(str(host), port, timeout=5)
    try:
        body = urlencode(form).encode() if form is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        connection.close()


def test_hosted_page_over_http(
    http_emulator: tuple[Emulator, EmulatorServer], http_client: stripe.StripeClient
) -> None:
    _, server = http_emulator
    price = _one_time(http_client, amount=1999, name="<script>alert(1)</script> Deluxe")
    session = http_client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": SUCCESS,
            "cancel_url": "https://shop.example/cart",
        }
    )
    assert session.url == f"{server.url}/checkout/pay/{session.id}"
    path = urlsplit(session.url).path

    status, headers, page = _http(server, "GET", path)
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Deluxe" in page
    assert "$19.99" in page
    assert 'value="4242 4242 4242 4242"' in page
    assert "4000 0000 0000 9995" in page
    assert 'href="https://shop.example/cart"' in page
    assert f'action="/_emulator/checkout/sessions/{session.id}/complete"' in page

    status, _, page = _http(
        server,
        "POST",
        f"/_emulator/checkout/sessions/{session.id}/complete",
        {"ui": "html", "card": "4000 0000 0000 0002", "email": "h@example.com"},
    )
    assert status == 402
    assert "Your card was declined." in page
    assert 'value="4000 0000 0000 0002"' in page

    status, _, page = _http(
        server,
        "POST",
        f"/_emulator/checkout/sessions/{session.id}/complete",
        {"ui": "html", "card": "4000 0027 6000 3184", "email": "h@example.com"},
    )
    assert status == 200
    assert "Authenticate" in page

    status, headers, _ = _http(
        server,
        "POST",
        f"/_emulator/checkout/sessions/{session.id}/authenticate",
        {"ui": "html", "outcome": "succeed"},
    )
    assert status == 303
    assert headers["location"] == f"https://shop.example/done?session={session.id}"
    assert http_client.v1.checkout.sessions.retrieve(session.id).status == "complete"

    status, _, page = _http(server, "GET", path)
    assert status == 200
    assert "complete" in page
    assert _http(server, "GET", "/checkout/pay/cs_test_missing")[0] == 404


def test_hosted_page_pay_redirects_to_success_url(
    http_emulator: tuple[Emulator, EmulatorServer], http_client: stripe.StripeClient
) -> None:
    _, server = http_emulator
    session = http_client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [{"price": _one_time(http_client).id, "quantity": 1}],
            "success_url": SUCCESS,
        }
    )
    status, headers, _ = _http(
        server,
        "POST",
        f"/_emulator/checkout/sessions/{session.id}/complete",
        {"ui": "html", "card": "4242424242424242"},
    )
    assert status == 303
    assert headers["location"] == f"https://shop.example/done?session={session.id}"
    status, _, body = _http(
        server, "POST", f"/_emulator/checkout/sessions/{session.id}/complete", {"card": "4242424242424242"}
    )
    assert status == 400
    assert json.loads(body)["error"]["type"] == "invalid_request_error"


def test_another_card_instead_of_authenticating(emulator: Emulator, client: stripe.StripeClient) -> None:
    session = _payment_session(client)
    pending = _complete(emulator, session.id, card="4000002760003184").data()
    paid = _complete(emulator, session.id, card="5555555555554444").data()
    assert paid["status"] == "complete"
    assert paid["payment_intent"] == pending["payment_intent"]
    assert len(client.v1.payment_intents.list().data) == 1


# -- the email typed at checkout ---------------------------------------------------------------------------


def _subscription_session(client: stripe.StripeClient, customer: str) -> stripe.checkout.Session:
    return client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": customer,
            "line_items": [{"price": _monthly(client).id, "quantity": 1}],
            "success_url": SUCCESS,
        }
    )


def test_typed_email_is_set_on_an_existing_customer_without_one(
    emulator: Emulator, client: stripe.StripeClient
) -> None:
    customer = client.v1.customers.create({"name": "Ada"})
    session = _subscription_session(client, customer.id)
    page = emulator.handle("GET", f"/checkout/pay/{session.id}").body.decode()
    assert 'name="email" value=""' in page
    assert "readonly>" not in page

    done = _complete(emulator, session.id, email="ada@example.com").data()
    assert done["customer_details"]["email"] == "ada@example.com"
    assert client.v1.customers.retrieve(customer.id).email == "ada@example.com"
    assert client.v1.invoices.retrieve(done["invoice"]).customer_email == "ada@example.com"
    updated = [e for e in events_of(client, "customer.updated") if "email" in e.data.previous_attributes]
    assert [(e.data.object.email, e.data.previous_attributes["email"]) for e in updated] == [
        ("ada@example.com", None)
    ]
    types = event_types(client)
    assert types.index("customer.updated") < types.index("checkout.session.completed")


def test_an_existing_customers_email_is_kept_and_not_editable(
    emulator: Emulator, client: stripe.StripeClient
) -> None:
    customer = client.v1.customers.create({"email": "kept@example.com"})
    session = _subscription_session(client, customer.id)
    page = emulator.handle("GET", f"/checkout/pay/{session.id}").body.decode()
    assert '<input type="email" id="email" name="email" value="kept@example.com" readonly>' in page

    done = _complete(emulator, session.id, email="typed@example.com").data()
    assert done["customer_details"]["email"] == "kept@example.com"
    assert client.v1.customers.retrieve(customer.id).email == "kept@example.com"
    assert not [e for e in events_of(client, "customer.updated") if "email" in e.data.previous_attributes]


def test_a_customer_created_by_checkout_carries_the_typed_email(
    emulator: Emulator, client: stripe.StripeClient
) -> None:
    session = _payment_session(client, customer_creation="always")
    done = _complete(emulator, session.id, email="new@example.com").data()
    assert done["customer_details"]["email"] == "new@example.com"
    assert client.v1.customers.retrieve(done["customer"]).email == "new@example.com"


def test_ui_mode_is_hosted_page_by_default_and_when_asked(client: stripe.StripeClient) -> None:
    assert _payment_session(client).ui_mode == "hosted_page"
    asked = _payment_session(client, ui_mode="hosted_page")
    assert (asked.ui_mode, asked.url is not None) == ("hosted_page", True)


@pytest.mark.parametrize(
    ("ui_mode", "message"),
    [
        ("hosted", "Invalid ui_mode: must be one of elements, embedded_page, form, or hosted_page"),
        ("embedded", "Invalid ui_mode: must be one of elements, embedded_page, form, or hosted_page"),
        ("custom", "Invalid ui_mode: must be one of elements, embedded_page, form, or hosted_page"),
        ("embedded_page", "The emulator supports Checkout's hosted page only (ui_mode=hosted_page)."),
    ],
)
def test_ui_mode_values_other_than_this_versions_are_refused(
    client: stripe.StripeClient, ui_mode: str, message: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        _payment_session(client, ui_mode=ui_mode)
    assert (err.value.http_status, err.value.error.type, err.value.error.param, err.value.error.message) == (
        400,
        "invalid_request_error",
        "ui_mode",
        message,
    )
    assert client.v1.checkout.sessions.list().data == []


def test_at_most_100_line_items(client: stripe.StripeClient) -> None:
    price = _one_time(client)

    def create(count: int) -> stripe.checkout.Session:
        return client.v1.checkout.sessions.create(
            {
                "mode": "payment",
                "line_items": [{"price": price.id, "quantity": 1}] * count,
                "success_url": SUCCESS,
            }
        )

    with pytest.raises(stripe.InvalidRequestError) as err:
        create(101)
    assert (err.value.http_status, err.value.error.type, err.value.error.param, err.value.error.message) == (
        400,
        "invalid_request_error",
        "line_items",
        "Invalid array: line_items must contain at most 100 items.",
    )
    assert client.v1.checkout.sessions.list().data == []
    session = create(100)
    assert (
        session.amount_total,
        len(client.v1.checkout.sessions.line_items.list(session.id, {"limit": 100}).data),
    ) == (
        150_000,
        100,
    )
