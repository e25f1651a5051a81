"""``customers.search`` through the SDK: Stripe's query language (exact and substring string matches,
metadata, ``created`` comparisons, ``AND`` / ``OR``, negation), the ``search_result`` envelope and its
pages, and the 400s for queries Stripe refuses."""

from __future__ import annotations

import pytest
import stripe

from tests.stripe_emulator.conftest import FakeClock


def _ids(result: stripe.SearchResultObject[stripe.Customer]) -> list[str]:
    return [c.id for c in result.data]


@pytest.fixture
def people(client: stripe.StripeClient, clock: FakeClock) -> dict[str, stripe.Customer]:
    made = {}
    for name, email, phone, metadata in (
        ("Amy Pond", "amy@rocketrides.io", "+15551230001", {"plan": "pro"}),
        ("Rory Williams", "rory@rocketrides.io", "+15551230002", {"plan": "free"}),
        ("Clara Oswald", "clara@example.com", None, {}),
    ):
        clock.now += 100
        params: dict[str, object] = {"name": name, "email": email, "metadata": metadata}
        if phone:
            params["phone"] = phone
        made[name.split()[0].lower()] = client.v1.customers.create(params)  # type: ignore[arg-type]
    return made


def test_exact_substring_and_metadata_clauses(
    client: stripe.StripeClient, people: dict[str, stripe.Customer]
) -> None:
    amy, rory, clara = people["amy"], people["rory"], people["clara"]
    search = client.v1.customers.search
    result = search({"query": "email:'amy@rocketrides.io'"})
    assert result.object == "search_result"
    assert result.url == "/v1/customers/search"
    assert (_ids(result), result.has_more, result.next_page) == ([amy.id], False, None)
    assert "total_count" not in result
    assert _ids(search({"query": 'email:"AMY@rocketrides.io"'})) == [amy.id]  # case-insensitive
    assert _ids(search({"query": "email~'rocketrides'"})) == [rory.id, amy.id]  # newest first
    assert _ids(search({"query": "name~'oswa'"})) == [clara.id]
    assert _ids(search({"query": "phone:'+15551230002'"})) == [rory.id]
    assert _ids(search({"query": "metadata['plan']:'pro'"})) == [amy.id]
    assert _ids(search({"query": 'metadata["plan"]:null'})) == [clara.id]
    assert _ids(search({"query": "-metadata['plan']:null"})) == [rory.id, amy.id]


def test_created_comparisons_and_connectors(
    client: stripe.StripeClient, people: dict[str, stripe.Customer]
) -> None:
    amy, rory, clara = people["amy"], people["rory"], people["clara"]
    search = client.v1.customers.search
    assert _ids(search({"query": f"created>{amy.created}"})) == [clara.id, rory.id]
    assert _ids(search({"query": f"created>={amy.created} AND created<{clara.created}"})) == [rory.id, amy.id]
    assert _ids(search({"query": f"created:{rory.created}"})) == [rory.id]
    assert _ids(search({"query": f"created<='{amy.created}'"})) == [amy.id]
    assert _ids(search({"query": "email~'rocketrides' -name:'Amy Pond'"})) == [rory.id]
    assert _ids(search({"query": "name:'Amy Pond' or name:'Clara Oswald'"})) == [clara.id, amy.id]
    assert _ids(search({"query": "name:'Amy Pond' AND email:'rory@rocketrides.io'"})) == []


def test_pages_and_total_count(client: stripe.StripeClient, people: dict[str, stripe.Customer]) -> None:
    query = {"query": "-name:'nobody at all'", "limit": 2}
    first = client.v1.customers.search({**query, "expand": ["total_count"]})  # type: ignore[typeddict-item]
    assert _ids(first) == [people["clara"].id, people["rory"].id]
    assert first.has_more is True
    assert first.total_count == 3
    assert first.next_page is not None
    second = client.v1.customers.search({**query, "page": first.next_page})  # type: ignore[typeddict-item]
    assert (_ids(second), second.has_more, second.next_page) == ([people["amy"].id], False, None)
    everyone = [c.id for c in client.v1.customers.search({**query}).auto_paging_iter()]  # type: ignore[typeddict-item]
    assert everyone == [people["clara"].id, people["rory"].id, people["amy"].id]


def test_deleted_customers_are_not_found(
    client: stripe.StripeClient, people: dict[str, stripe.Customer]
) -> None:
    client.v1.customers.delete(people["amy"].id)
    assert _ids(client.v1.customers.search({"query": "email~'rocketrides'"})) == [people["rory"].id]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "email",
        "email:amy@rocketrides.io",  # strings must be quoted
        "address:'x'",  # not a customer search field
        "email>'a'",  # no comparisons on strings
        "created~'17'",  # no substring on numbers
        "created>'soon'",
        "name~'am'",  # a substring needs 3 characters
        "name:'a' AND name:'b' OR name:'c'",  # AND and OR do not mix
        "metadata['plan']~'pro'",
        "metadata:'x'",
        " ".join(f"name:'n{i}'" for i in range(11)),  # at most 10 clauses
        "(name:'a')",
    ],
)
def test_invalid_queries_answer_400(client: stripe.StripeClient, query: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.customers.search({"query": query})
    assert refused.value.http_status == 400
    assert refused.value.param == "query"


def test_invalid_page_and_limit(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as page:
        client.v1.customers.search({"query": "name:'x'", "page": "not-a-page"})
    assert page.value.param == "page"
    with pytest.raises(stripe.InvalidRequestError) as limit:
        client.v1.customers.search({"query": "name:'x'", "limit": 101})
    assert limit.value.param == "limit"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.customers.search({"query": "name:'x'", "email": "a@b.c"})  # type: ignore[typeddict-unknown-key]
    assert unknown.value.param == "email"
