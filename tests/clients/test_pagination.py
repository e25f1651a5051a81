"""Lists come as typed pages; `auto_paging_iter()` follows `starting_after` through all of them, keeping the
filters and the page size."""

import pytest

from tests.clients.conftest import CANCEL, OK

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_page_and_all_pages(via_proxy, proxy):
    for n in range(5):
        via_proxy.customers.create(external_id=f"user-{n}")
    page = via_proxy.customers.list(limit=2)
    assert ([c.external_id for c in page.data], page.has_more) == (["user-4", "user-3"], True)
    assert len(page) == 2

    proxy.seen.clear()
    everyone = [c.external_id for c in page.auto_paging_iter()]
    assert everyone == ["user-4", "user-3", "user-2", "user-1", "user-0"]  # newest first, once each
    gets = proxy.requests("GET")
    assert len(gets) == 2  # the first page was already there
    assert "limit=2" in gets[0].path
    assert "starting_after=" in gets[0].path

    last = via_proxy.customers.list(limit=2, starting_after=page.data[-1].id)
    assert [c.external_id for c in last.data] == ["user-2", "user-1"]
    final = last.next_page()
    assert final is not None
    assert ([c.external_id for c in final.data], final.has_more, final.next_page()) == (
        ["user-0"],
        False,
        None,
    )


def test_the_filters_hold_on_every_page(tollgate, catalog):
    for n in range(3):
        tollgate.payments.create(
            customer="user-1", price="sticker", reference=f"a-{n}", success_url=OK, cancel_url=CANCEL
        )
        tollgate.payments.create(
            customer="user-2", price="sticker", reference=f"b-{n}", success_url=OK, cancel_url=CANCEL
        )
    references = [p.reference for p in tollgate.payments.list(customer="user-1", limit=1).auto_paging_iter()]
    assert references == ["a-2", "a-1", "a-0"]


def test_stopping_early_fetches_no_more(via_proxy, proxy):
    for n in range(4):
        via_proxy.customers.create(external_id=f"user-{n}")
    proxy.seen.clear()
    iterator = via_proxy.customers.list(limit=1).auto_paging_iter()
    assert [next(iterator).external_id, next(iterator).external_id] == ["user-3", "user-2"]
    assert len(proxy.requests("GET")) == 2


def test_an_empty_list(tollgate):
    page = tollgate.invoices.list()
    assert (page.data, page.has_more, list(page.auto_paging_iter())) == ([], False, [])
