"""List envelopes, cursor pagination and expand."""

from __future__ import annotations

import pytest
import stripe


@pytest.fixture
def customers(client: stripe.StripeClient) -> list[str]:
    """25 customers, ids oldest first."""
    return [client.v1.customers.create({"name": f"c{i}"}).id for i in range(25)]


def test_default_page_is_ten_newest_first(client: stripe.StripeClient, customers: list[str]) -> None:
    page = client.v1.customers.list()
    assert page.object == "list"
    assert page.url == "/v1/customers"
    assert [c.id for c in page.data] == customers[::-1][:10]
    assert page.has_more is True


def test_starting_after_walks_to_the_end(client: stripe.StripeClient, customers: list[str]) -> None:
    seen: list[str] = []
    page = client.v1.customers.list({"limit": 7})
    while True:
        seen += [c.id for c in page.data]
        if not page.has_more:
            break
        page = client.v1.customers.list({"limit": 7, "starting_after": page.data[-1].id})
    assert seen == customers[::-1]


def test_ending_before_pages_backwards(client: stripe.StripeClient, customers: list[str]) -> None:
    newest_first = customers[::-1]
    page = client.v1.customers.list({"limit": 5, "ending_before": newest_first[12]})
    assert [c.id for c in page.data] == newest_first[7:12]
    assert page.has_more is True
    first_page = client.v1.customers.list({"limit": 5, "ending_before": newest_first[5]})
    assert [c.id for c in first_page.data] == newest_first[:5]
    assert first_page.has_more is False


def test_auto_paging_iter_sees_everything_once(client: stripe.StripeClient, customers: list[str]) -> None:
    ids = [c.id for c in client.v1.customers.list({"limit": 4}).auto_paging_iter()]
    assert ids == customers[::-1]


def test_limit_bounds(client: stripe.StripeClient, customers: list[str]) -> None:
    assert len(client.v1.customers.list({"limit": 100}).data) == 25
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.list({"limit": 0})


def test_unknown_cursor_is_resource_missing(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.list({"starting_after": "cus_nope"})
    assert info.value.param == "starting_after"


def test_cursor_excluded_by_filter_still_works(client: stripe.StripeClient) -> None:
    product = client.v1.products.create({"name": "p"})
    a = client.v1.prices.create({"currency": "usd", "unit_amount": 1, "product": product.id})
    b = client.v1.prices.create({"currency": "usd", "unit_amount": 2, "product": product.id, "active": False})
    c = client.v1.prices.create({"currency": "usd", "unit_amount": 3, "product": product.id})
    page = client.v1.prices.list({"active": True, "starting_after": b.id})
    assert [p.id for p in page.data] == [a.id]
    assert [p.id for p in client.v1.prices.list({"active": True, "ending_before": b.id}).data] == [c.id]


def test_expand_on_retrieve_and_nested(client: stripe.StripeClient) -> None:
    product = client.v1.products.create({"name": "Pro"})
    price = client.v1.prices.create({"currency": "usd", "unit_amount": 500, "product": product.id})
    client.v1.products.update(product.id, {"default_price": price.id})
    expanded = client.v1.prices.retrieve(price.id, {"expand": ["product"]})
    assert expanded.product.id == product.id
    assert expanded.product.name == "Pro"
    nested = client.v1.prices.retrieve(price.id, {"expand": ["product.default_price"]})
    assert nested.product.default_price.unit_amount == 500
    # The stored object is untouched by expansion.
    assert client.v1.prices.retrieve(price.id).product == product.id


def test_expand_data_prefix_on_lists(client: stripe.StripeClient) -> None:
    client.v1.prices.create({"currency": "usd", "unit_amount": 1, "product_data": {"name": "a"}})
    page = client.v1.prices.list({"expand": ["data.product"]})
    assert page.data[0].product.object == "product"


def test_expand_unknown_or_scalar_field_is_400(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({"email": "x@example.com"})
    for path in ("nope", "email", "id", "a.b.c.d.e"):
        with pytest.raises(stripe.InvalidRequestError) as info:
            client.v1.customers.retrieve(customer.id, {"expand": [path]})
        assert info.value.param == "expand"


def test_expand_null_field_stays_null(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({})
    assert client.v1.customers.retrieve(customer.id, {"expand": ["default_source"]}).default_source is None
