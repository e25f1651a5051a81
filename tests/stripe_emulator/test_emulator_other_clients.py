"""What other Stripe clients (dj-stripe and the like) ask of the emulator beyond Tollgate's own calls:
``GET /v1/account``, a customer's ``sources`` (``expand[]`` and ``GET …/sources``), a Checkout Session's
includable ``line_items`` and ``total_details.breakdown``, and ``GET /v1/products/{id}/features``."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator
from stripe_emulator.sdk import make_client
from tests.stripe_emulator.conftest import KEY_A, FakeClock

NO_REQUIREMENTS = {
    "alternatives": [],
    "current_deadline": None,
    "currently_due": [],
    "disabled_reason": None,
    "errors": [],
    "eventually_due": [],
    "past_due": [],
    "pending_verification": [],
}


def _error(info: pytest.ExceptionInfo[stripe.StripeError]) -> dict[str, Any]:
    body = info.value.json_body
    assert body is not None
    return dict(body["error"])


# -- GET /v1/account ---------------------------------------------------------------------------------------


def test_account_is_the_keys_own_activated_account(
    emulator: Emulator, client: stripe.StripeClient, clock: FakeClock
) -> None:
    created = int(clock.now)
    client.v1.customers.create({})  # the account is created on the key's first use
    clock.now += 3600
    account = client.v1.accounts.retrieve_current()
    account_id = emulator.accounts[KEY_A].id
    email = f"{account_id.lower()}@example.com"
    assert account_id.startswith("acct_")
    assert account.to_dict() == {
        "id": account_id,
        "object": "account",
        "business_profile": {
            "annual_revenue": None,
            "estimated_worker_count": None,
            "mcc": None,
            "minority_owned_business_designation": None,
            "name": "Stripe emulator",
            "product_description": None,
            "support_address": None,
            "support_email": email,
            "support_phone": None,
            "support_url": None,
            "url": None,
        },
        "business_type": None,
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True,
        "controller": {"type": "account"},
        "country": "US",
        "created": created,
        "default_currency": "usd",
        "details_submitted": True,
        "email": email,
        "external_accounts": {
            "object": "list",
            "data": [],
            "has_more": False,
            "total_count": 0,
            "url": f"/v1/accounts/{account_id}/external_accounts",
        },
        "future_requirements": NO_REQUIREMENTS,
        "metadata": {},
        "payouts_enabled": True,
        "requirements": NO_REQUIREMENTS,
        "settings": {
            "bacs_debit_payments": {"display_name": None, "service_user_number": None},
            "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
            "card_issuing": {"tos_acceptance": {"date": None, "ip": None}},
            "card_payments": {
                "decline_on": {"avs_failure": False, "cvc_failure": False},
                "statement_descriptor_prefix": None,
                "statement_descriptor_prefix_kana": None,
                "statement_descriptor_prefix_kanji": None,
            },
            "dashboard": {"display_name": "Stripe emulator", "timezone": "Etc/UTC"},
            "invoices": {"default_account_tax_ids": None, "hosted_payment_method_save": None},
            "payments": {
                "statement_descriptor": None,
                "statement_descriptor_kana": None,
                "statement_descriptor_kanji": None,
                "statement_descriptor_prefix_kana": None,
                "statement_descriptor_prefix_kanji": None,
            },
            "payouts": {
                "debit_negative_balances": True,
                "schedule": {"delay_days": 2, "interval": "daily"},
                "statement_descriptor": None,
            },
            "sepa_debit_payments": {},
        },
        "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
        "type": "standard",
    }
    assert isinstance(account, stripe.Account)
    # Stable: the same object on every read, whatever the clock says.
    clock.now += 86_400
    assert client.v1.accounts.retrieve_current().to_dict() == account.to_dict()


def test_each_key_has_its_own_account(client: stripe.StripeClient, other_client: stripe.StripeClient) -> None:
    mine = client.v1.accounts.retrieve_current()
    theirs = other_client.v1.accounts.retrieve_current()
    assert mine.id != theirs.id
    assert mine.email != theirs.email


def test_account_survives_a_restart(tmp_path: object) -> None:
    path = str(tmp_path) + "/state.json"
    first = Emulator(webhook_mode="manual", clock=FakeClock(1_700_000_000), data_path=path)
    before = make_client(first, "sk_test_persist").v1.accounts.retrieve_current()
    make_client(first, "sk_test_persist").v1.customers.create({})  # a write saves the state
    first.close()

    second = Emulator(webhook_mode="manual", clock=FakeClock(1_900_000_000), data_path=path)
    after = make_client(second, "sk_test_persist").v1.accounts.retrieve_current()
    assert (after.id, after.created) == (before.id, 1_700_000_000)


def test_account_refuses_params(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.accounts.retrieve_current({"email": "x@example.com"})  # type: ignore[typeddict-unknown-key]
    assert info.value.http_status == 400
    assert _error(info) == {
        "type": "invalid_request_error",
        "code": "parameter_unknown",
        "doc_url": "https://stripe.com/docs/error-codes/parameter_unknown",
        "message": "Received unknown parameter: email",
        "param": "email",
    }


def test_account_nothing_to_expand(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.accounts.retrieve_current({"expand": ["email"]})
    assert (info.value.http_status, info.value.param) == (400, "expand")


def test_account_needs_a_valid_key(emulator: Emulator) -> None:
    with pytest.raises(stripe.AuthenticationError):
        make_client(emulator, "sk_live_nope").v1.accounts.retrieve_current()


# -- a customer's sources ----------------------------------------------------------------------------------


def _empty_sources(customer_id: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [],
        "has_more": False,
        "total_count": 0,
        "url": f"/v1/customers/{customer_id}/sources",
    }


def test_sources_only_when_expanded(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({"email": "src@example.com"})
    assert "sources" not in customer
    assert "sources" not in client.v1.customers.retrieve(customer.id)

    expanded = client.v1.customers.retrieve(customer.id, {"expand": ["sources"]})
    assert expanded.to_dict()["sources"] == _empty_sources(customer.id)
    assert {k: v for k, v in expanded.to_dict().items() if k != "sources"} == customer.to_dict()

    listed = client.v1.customers.list({"expand": ["data.sources"]})
    assert [c.to_dict()["sources"] for c in listed.data] == [_empty_sources(customer.id)]
    updated = client.v1.customers.update(customer.id, {"name": "Src", "expand": ["sources"]})
    assert updated.to_dict()["sources"] == _empty_sources(customer.id)
    created = client.v1.customers.create({"expand": ["sources"]})
    assert created.to_dict()["sources"] == _empty_sources(created.id)


def test_sources_cannot_be_expanded_on_a_deleted_customer(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({})
    client.v1.customers.delete(customer.id)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.retrieve(customer.id, {"expand": ["sources"]})
    assert (info.value.http_status, info.value.param) == (400, "expand")


def test_customer_source_list(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({})
    page = client.v1.customers.payment_sources.list(customer.id)
    assert page.to_dict() == {
        "object": "list",
        "data": [],
        "has_more": False,
        "url": f"/v1/customers/{customer.id}/sources",
    }
    filtered = client.v1.customers.payment_sources.list(customer.id, {"object": "card", "limit": 3})
    assert filtered.data == []


def test_customer_source_list_unknown_customer(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.payment_sources.list("cus_missing")
    assert info.value.http_status == 404
    assert _error(info) == {
        "type": "invalid_request_error",
        "code": "resource_missing",
        "doc_url": "https://stripe.com/docs/error-codes/resource_missing",
        "message": "No such customer: 'cus_missing'",
        "param": "customer",
    }


def test_customer_source_list_refuses_unknown_params(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({})
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.payment_sources.list(customer.id, {"type": "card"})  # type: ignore[typeddict-unknown-key]
    assert (info.value.http_status, info.value.code, info.value.param) == (400, "parameter_unknown", "type")
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.payment_sources.list(customer.id, {"limit": 101})
    assert (info.value.http_status, info.value.param) == (400, "limit")


def test_customer_sources_of_another_account_are_missing(
    client: stripe.StripeClient, other_client: stripe.StripeClient
) -> None:
    customer = client.v1.customers.create({})
    with pytest.raises(stripe.InvalidRequestError) as info:
        other_client.v1.customers.payment_sources.list(customer.id)
    assert info.value.http_status == 404


# -- Checkout: line_items, total_details.breakdown ---------------------------------------------------------


def _session(client: stripe.StripeClient, count: int = 2, **extra: Any) -> stripe.checkout.Session:
    price = client.v1.prices.create(
        {"currency": "usd", "unit_amount": 1500, "product_data": {"name": "Widget"}}
    )
    items: list[dict[str, Any]] = [{"price": price.id, "quantity": 2}]
    items += [
        {
            "price_data": {"currency": "usd", "unit_amount": 100 + i, "product_data": {"name": f"Extra {i}"}},
            "quantity": 1,
        }
        for i in range(count - 1)
    ]
    params: dict[str, Any] = {
        "mode": "payment",
        "success_url": "https://shop.example/done",
        "line_items": items,
        **extra,
    }
    return client.v1.checkout.sessions.create(params)  # type: ignore[arg-type]


def test_line_items_and_breakdown_only_when_expanded(client: stripe.StripeClient) -> None:
    session = _session(client)
    assert "line_items" not in session
    assert session.total_details.to_dict() == {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}
    listed = client.v1.checkout.sessions.line_items.list(session.id)
    assert all("discounts" not in item and "taxes" not in item for item in listed.data)


def test_expand_line_items_on_retrieve_is_the_line_items_page(client: stripe.StripeClient) -> None:
    session = _session(client)
    expanded = client.v1.checkout.sessions.retrieve(session.id, {"expand": ["line_items"]})
    listed = client.v1.checkout.sessions.line_items.list(session.id)
    assert expanded.line_items is not None
    assert expanded.line_items.to_dict() == listed.to_dict()
    assert expanded.line_items.url == f"/v1/checkout/sessions/{session.id}/line_items"
    assert expanded.line_items.has_more is False
    assert [(i.object, i.description, i.quantity, i.amount_total) for i in expanded.line_items.data] == [
        ("item", "Widget", 2, 3000),
        ("item", "Extra 0", 1, 100),
    ]
    assert "total_count" not in expanded.line_items
    assert {k: v for k, v in expanded.to_dict().items() if k != "line_items"} == session.to_dict()


def test_expand_line_items_on_create(client: stripe.StripeClient) -> None:
    session = _session(client, expand=["line_items", "line_items.data.price.product"])
    assert session.line_items is not None
    first = session.line_items.data[0]
    assert (first.description, first.amount_subtotal, first.currency) == ("Widget", 3000, "usd")
    assert isinstance(first.price.product, stripe.Product)
    assert first.price.product.name == "Widget"


def test_expanded_line_items_stop_after_ten(client: stripe.StripeClient) -> None:
    session = _session(client, count=12)
    expanded = client.v1.checkout.sessions.retrieve(session.id, {"expand": ["line_items"]})
    assert expanded.line_items is not None
    assert len(expanded.line_items.data) == 10
    assert expanded.line_items.has_more is True
    everything = client.v1.checkout.sessions.line_items.list(session.id, {"limit": 100})
    assert [i.id for i in expanded.line_items.data] == [i.id for i in everything.data[:10]]


def test_expand_total_details_breakdown(client: stripe.StripeClient) -> None:
    session = _session(client)
    expanded = client.v1.checkout.sessions.retrieve(session.id, {"expand": ["total_details.breakdown"]})
    assert expanded.total_details.to_dict() == {
        "amount_discount": 0,
        "amount_shipping": 0,
        "amount_tax": 0,
        "breakdown": {"discounts": [], "taxes": []},
    }
    listed = client.v1.checkout.sessions.list({"expand": ["data.total_details.breakdown"]})
    assert listed.data[0].total_details.to_dict()["breakdown"] == {"discounts": [], "taxes": []}


def test_line_item_discounts_and_taxes_are_includable(client: stripe.StripeClient) -> None:
    session = _session(client)
    expanded = client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["line_items.data.discounts", "line_items.data.taxes"]}
    )
    assert expanded.line_items is not None
    assert [(i.to_dict()["discounts"], i.to_dict()["taxes"]) for i in expanded.line_items.data] == [
        ([], []),
        ([], []),
    ]
    listed = client.v1.checkout.sessions.line_items.list(
        session.id, {"expand": ["data.discounts", "data.taxes"]}
    )
    assert [(i.to_dict()["discounts"], i.to_dict()["taxes"]) for i in listed.data] == [([], []), ([], [])]


def test_checkout_expand_refusals(client: stripe.StripeClient) -> None:
    session = _session(client)
    for path in ("total_details.amount_tax_breakdown", "breakdown", "line_items.data.nothing"):
        with pytest.raises(stripe.InvalidRequestError) as info:
            client.v1.checkout.sessions.retrieve(session.id, {"expand": [path]})
        assert (info.value.http_status, info.value.param) == (400, "expand"), path
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.retrieve(
            session.id, {"expand": ["line_items.data.price.product.default_price.x"]}
        )
    assert info.value.http_status == 400
    assert info.value.user_message is not None
    assert "cannot expand more than 4 levels" in info.value.user_message


def test_expand_line_items_unknown_session(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.retrieve("cs_test_missing", {"expand": ["line_items"]})
    assert info.value.http_status == 404
    assert (info.value.code, info.value.param) == ("resource_missing", "id")
    assert info.value.user_message == "No such checkout.session: 'cs_test_missing'"


# -- GET /v1/products/{id}/features -------------------------------------------------------------------------


def test_product_features_is_an_empty_list(client: stripe.StripeClient) -> None:
    product = client.v1.products.create({"name": "Pro"})
    page = client.v1.products.features.list(product.id)
    assert page.to_dict() == {
        "object": "list",
        "data": [],
        "has_more": False,
        "url": f"/v1/products/{product.id}/features",
    }
    assert client.v1.products.features.list(product.id, {"limit": 100}).data == []


def test_product_features_unknown_or_deleted_product(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.products.features.list("prod_missing")
    assert info.value.http_status == 404
    assert _error(info) == {
        "type": "invalid_request_error",
        "code": "resource_missing",
        "doc_url": "https://stripe.com/docs/error-codes/resource_missing",
        "message": "No such product: 'prod_missing'",
        "param": "product",
    }
    gone = client.v1.products.create({"name": "Gone"})
    client.v1.products.delete(gone.id)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.products.features.list(gone.id)
    assert info.value.http_status == 404


def test_product_features_pagination_params(client: stripe.StripeClient) -> None:
    product = client.v1.products.create({"name": "Pro"})
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.products.features.list(product.id, {"limit": 0})
    assert (info.value.http_status, info.value.param) == (400, "limit")
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.products.features.list(
            product.id, {"starting_after": "prodft_x", "ending_before": "prodft_y"}
        )
    assert (info.value.http_status, info.value.param) == (400, "ending_before")
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.products.features.list(product.id, {"starting_after": "prodft_missing"})
    assert (info.value.http_status, info.value.code, info.value.param) == (
        404,
        "resource_missing",
        "starting_after",
    )


def test_product_features_refuses_unknown_params(client: stripe.StripeClient) -> None:
    product = client.v1.products.create({"name": "Pro"})
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.products.features.list(product.id, {"active": True})  # type: ignore[typeddict-unknown-key]
    assert (info.value.http_status, info.value.code, info.value.param) == (400, "parameter_unknown", "active")


def test_product_features_write_is_not_emulated(client: stripe.StripeClient) -> None:
    product = client.v1.products.create({"name": "Pro"})
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.products.features.create(product.id, {"entitlement_feature": "feat_x"})
    assert info.value.http_status == 404
    assert info.value.user_message is not None
    assert info.value.user_message.startswith("Unrecognized request URL (POST: /v1/products/")
