"""Customers, products and prices: lifecycle, filters, metadata, lookup keys, immutability."""

from __future__ import annotations

import pytest
import stripe


def test_customer_lifecycle(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(
        {
            "email": "ada@example.com",
            "name": "Ada",
            "address": {"country": "GB", "city": "London"},
            "preferred_locales": ["en"],
            "invoice_settings": {"footer": "thanks"},
        }
    )
    assert customer.id.startswith("cus_")
    assert customer.livemode is False
    assert customer.address is not None
    assert customer.address.city == "London"
    assert customer.address.line1 is None
    assert customer.invoice_settings.footer == "thanks"
    assert client.v1.customers.retrieve(customer.id).to_dict() == customer.to_dict()
    updated = client.v1.customers.update(customer.id, {"name": "Ada L", "description": "vip"})
    assert (updated.name, updated.description) == ("Ada L", "vip")
    cleared = client.v1.customers.update(customer.id, {"description": ""})
    assert cleared.description is None

    deleted = client.v1.customers.delete(customer.id)
    assert deleted.to_dict() == {"id": customer.id, "object": "customer", "deleted": True}
    assert client.v1.customers.retrieve(customer.id).deleted is True
    assert client.v1.customers.list().data == []
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(customer.id, {"name": "zombie"})


def test_customer_email_filter(client: stripe.StripeClient) -> None:
    a = client.v1.customers.create({"email": "a@example.com"})
    client.v1.customers.create({"email": "b@example.com"})
    assert [c.id for c in client.v1.customers.list({"email": "a@example.com"}).data] == [a.id]


def test_metadata_merges_and_empty_value_deletes(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({"metadata": {"a": "1", "b": "2"}})
    updated = client.v1.customers.update(customer.id, {"metadata": {"b": "", "c": "3"}})
    assert updated.metadata.to_dict() == {"a": "1", "c": "3"}
    assert client.v1.customers.update(customer.id, {"metadata": ""}).metadata.to_dict() == {}


def test_metadata_limits(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.create({"metadata": {"k" * 41: "v"}})
    assert info.value.param is not None
    assert info.value.param.startswith("metadata[")


def test_product_lifecycle_and_active_filter(client: stripe.StripeClient) -> None:
    keep = client.v1.products.create({"name": "Keep", "metadata": {"tier": "pro"}})
    retired = client.v1.products.create({"name": "Retired", "active": False})
    assert keep.id.startswith("prod_")
    assert keep.active is True
    assert [p.id for p in client.v1.products.list({"active": False}).data] == [retired.id]
    assert [p.id for p in client.v1.products.list({"active": True}).data] == [keep.id]
    updated = client.v1.products.update(keep.id, {"description": "best"})
    assert updated.description == "best"
    assert client.v1.products.delete(retired.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.products.retrieve(retired.id)
    assert info.value.http_status == 404


def test_product_with_custom_id_and_duplicate(client: stripe.StripeClient) -> None:
    assert client.v1.products.create({"id": "prod_custom", "name": "c"}).id == "prod_custom"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.products.create({"id": "prod_custom", "name": "c"})
    assert info.value.code == "resource_already_exists"


def test_product_with_prices_cannot_be_deleted(client: stripe.StripeClient) -> None:
    price = client.v1.prices.create({"currency": "usd", "unit_amount": 1, "product_data": {"name": "p"}})
    with pytest.raises(stripe.InvalidRequestError, match="cannot be deleted"):
        client.v1.products.delete(str(price.product))


def test_price_create_forms(client: stripe.StripeClient) -> None:
    product = client.v1.products.create({"name": "Seats"})
    one_time = client.v1.prices.create({"currency": "EUR", "unit_amount": 1999, "product": product.id})
    # The SDK hydrates decimal strings as Decimal.
    assert (one_time.type, one_time.currency, str(one_time.unit_amount_decimal)) == (
        "one_time",
        "eur",
        "1999",
    )
    assert one_time.recurring is None
    assert one_time.tax_behavior == "unspecified"
    monthly = client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 1000,
            "product_data": {"name": "Pro plan", "metadata": {"k": "v"}},
            "recurring": {"interval": "month", "interval_count": 3},
            "tax_behavior": "exclusive",
        }
    )
    assert monthly.type == "recurring"
    assert monthly.recurring is not None
    assert monthly.recurring.to_dict() == {
        "interval": "month",
        "interval_count": 3,
        "meter": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }
    assert client.v1.products.retrieve(str(monthly.product)).metadata.to_dict() == {"k": "v"}
    meter = client.v1.billing.meters.create(
        {"display_name": "Calls", "event_name": "calls", "default_aggregation": {"formula": "sum"}}
    )
    metered = client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount_decimal": "0.5",
            "product": product.id,
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
        }
    )
    assert metered.recurring is not None
    assert metered.recurring.meter == meter.id
    assert (metered.unit_amount, str(metered.unit_amount_decimal)) == (None, "0.5")


def test_price_validation(client: stripe.StripeClient) -> None:
    product = client.v1.products.create({"name": "p"})
    cases = [
        ({"currency": "usd", "unit_amount": 1}, "product"),
        ({"currency": "usd", "product": product.id}, "unit_amount"),
        ({"currency": "usd", "unit_amount": 1, "product": "prod_nope"}, "product"),
        (
            {
                "currency": "usd",
                "unit_amount": 1,
                "product": product.id,
                "recurring": {"interval": "month", "usage_type": "metered"},
            },
            "recurring[meter]",
        ),
        (
            {
                "currency": "usd",
                "unit_amount": 1,
                "product": product.id,
                "recurring": {"interval": "year", "interval_count": 4},
            },
            "recurring[interval_count]",
        ),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as info:
            client.v1.prices.create(params)
        assert info.value.param == param, params
    assert client.v1.prices.list().data == []  # nothing half-created


def test_price_amount_and_currency_are_immutable(client: stripe.StripeClient) -> None:
    price = client.v1.prices.create({"currency": "usd", "unit_amount": 100, "product_data": {"name": "p"}})
    for params in ({"unit_amount": 200}, {"currency": "eur"}, {"recurring": {"interval": "month"}}):
        with pytest.raises(stripe.InvalidRequestError) as info:
            client.v1.prices.update(price.id, params)
        assert info.value.http_status == 400
        assert info.value.param == next(iter(params))
    assert client.v1.prices.retrieve(price.id).unit_amount == 100
    archived = client.v1.prices.update(price.id, {"active": False, "nickname": "old"})
    assert (archived.active, archived.nickname) == (False, "old")


def test_tax_behavior_is_set_once(client: stripe.StripeClient) -> None:
    price = client.v1.prices.create({"currency": "usd", "unit_amount": 100, "product_data": {"name": "p"}})
    assert client.v1.prices.update(price.id, {"tax_behavior": "inclusive"}).tax_behavior == "inclusive"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.update(price.id, {"tax_behavior": "exclusive"})


def test_lookup_keys_are_unique_unless_transferred(client: stripe.StripeClient) -> None:
    product = client.v1.products.create({"name": "p"})
    old = client.v1.prices.create(
        {"currency": "usd", "unit_amount": 100, "product": product.id, "lookup_key": "pro"}
    )
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.prices.create(
            {"currency": "usd", "unit_amount": 200, "product": product.id, "lookup_key": "pro"}
        )
    assert info.value.param == "lookup_key"
    assert old.id in (info.value.user_message or "")
    new = client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 200,
            "product": product.id,
            "lookup_key": "pro",
            "transfer_lookup_key": True,
        }
    )
    assert client.v1.prices.retrieve(old.id).lookup_key is None
    assert [p.id for p in client.v1.prices.list({"lookup_keys": ["pro"]}).data] == [new.id]
    # Update path: taking the key needs transfer_lookup_key too.
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.update(old.id, {"lookup_key": "pro"})
    client.v1.prices.update(old.id, {"lookup_key": "pro", "transfer_lookup_key": True})
    assert client.v1.prices.retrieve(new.id).lookup_key is None
    # An inactive price still holds its key.
    client.v1.prices.update(old.id, {"active": False})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.create(
            {"currency": "usd", "unit_amount": 1, "product": product.id, "lookup_key": "pro"}
        )


def test_price_list_filters(client: stripe.StripeClient) -> None:
    p1 = client.v1.products.create({"name": "one"})
    p2 = client.v1.products.create({"name": "two"})
    monthly = client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 1,
            "product": p1.id,
            "recurring": {"interval": "month"},
            "lookup_key": "m",
        }
    )
    once = client.v1.prices.create({"currency": "usd", "unit_amount": 1, "product": p2.id, "lookup_key": "o"})
    inactive = client.v1.prices.create(
        {"currency": "eur", "unit_amount": 1, "product": p1.id, "active": False}
    )

    def ids(params: dict[str, object]) -> list[str]:
        return [p.id for p in client.v1.prices.list(params).data]

    assert ids({"product": p1.id}) == [inactive.id, monthly.id]
    assert ids({"type": "one_time"}) == [inactive.id, once.id]
    assert ids({"active": True}) == [once.id, monthly.id]
    assert ids({"lookup_keys": ["m", "o"]}) == [once.id, monthly.id]
    assert ids({"currency": "eur"}) == [inactive.id]
    assert ids({"recurring": {"interval": "month"}}) == [monthly.id]
