"""The customer list never scans the customers table (issue "Production for real…", point 6: at 126,000 rows the
page ran `SELECT DISTINCT currency` over the table for its filter and counted the table twice). Its paginator
counts at most a cap of rows, once (core.admin_lists), and its currency filter offers the catalog's currencies.
`python -m bench pages` measures the page at 100,000 customers against the same page at 20.
"""

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.models import CreditNote, Invoice, Payment, Subscription
from core.admin_lists import CappedCountPaginator
from core.models import AuditLogEntry
from customers.models import Customer
from events.models import Event
from tests.backoffice.test_changelist_queries import _audit
from tests.billing.factories import CreditNoteFactory, PriceFactory
from tests.billing.payment_factories import (
    CustomerFactory,
    InvoiceFactory,
    PaymentFactory,
    SubscriptionFactory,
)
from tests.events.factories import EventFactory
from tests.projects.factories import ProjectFactory
from webhooks.models import StripeEvent

PATH = "/admin/customers/customer/"
TABLE = Customer._meta.db_table


@pytest.fixture
def shop(db, monkeypatch):
    """Twelve customers paying in eur, three in usd; a catalog priced in eur and gbp; the cap at 10."""
    monkeypatch.setattr(CappedCountPaginator, "cap", 10)
    project = ProjectFactory(default_currency="usd")
    PriceFactory(project=project, currency="eur")
    PriceFactory(project=project, currency="gbp")
    for n in range(15):
        CustomerFactory(project=project, currency="eur" if n < 12 else "usd")
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    return client


def _customer_queries(client, path):
    with CaptureQueriesContext(connection) as queries:
        page = client.get(path)
    assert page.status_code == 200
    return page.content.decode(), [q["sql"] for q in queries.captured_queries if TABLE in q["sql"]]


def test_a_page_of_a_list_past_the_cap_counts_the_cap_once_and_reads_no_distinct_currency(shop):
    text, queries = _customer_queries(shop, PATH)

    assert "more than 10 customers (search or filter to narrow them)" in text
    assert "results (" not in text  # the search bar counts only a search or a filter's list
    assert "Show counts" not in text  # facets would count the table per filter choice
    assert not [sql for sql in queries if "DISTINCT" in sql.upper()]
    counts = [sql for sql in queries if "COUNT(" in sql.upper()]
    assert len(counts) == 1  # not a second count of the whole table
    assert "LIMIT 11" in counts[0]
    assert "ORDER BY" not in counts[0]  # a sorted subquery would sort the whole table before its limit
    # The filter offers the catalog's and the project's currencies, read from those small tables.
    for currency in ("eur", "gbp", "usd"):
        assert f'href="?currency={currency}"' in text


def test_a_search_past_the_cap_says_so_in_the_search_bar(shop):
    text, _ = _customer_queries(shop, PATH + "?q=example.com")

    assert "more than 10 results" in text


def test_a_filtered_list_under_the_cap_shows_its_exact_count_and_rows(shop):
    text, _ = _customer_queries(shop, PATH + "?currency=usd")

    assert "3 customers" in text
    assert "3 results" in text
    assert "more than" not in text
    assert text.count('class="field-external_id"') == 3


def test_a_currency_nobody_holds_lists_nobody(shop):
    text, _ = _customer_queries(shop, PATH + "?currency=gbp")

    assert "0 customers" in text
    assert 'class="field-external_id"' not in text


@pytest.mark.postgres
def test_every_projects_customers_newest_first_are_read_from_an_index(shop):
    _, queries = _customer_queries(shop, PATH)
    # 15 rows fit one page, which Django reads without LIMIT: the plan of a full page is asked for below.
    page = [sql for sql in queries if "ORDER BY" in sql and "COUNT(" not in sql.upper()]
    assert len(page) == 1
    with transaction.atomic(), connection.cursor() as cursor:
        # A 15-row table would be read whole and sorted otherwise: ask for the plan a large list gets.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + page[0] + " LIMIT 100")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan Backward using customer_admin_list" in plan, plan
    assert "Sort" not in plan, plan


def _stripe_event(project):
    n = StripeEvent.objects.count()
    return StripeEvent.objects.create(
        account="platform",
        stripe_event_id=f"evt_large_{n}",
        type="invoice.paid",
        stripe_created=1_700_000_000 + n,
        payload={"id": f"evt_large_{n}", "data": {"object": {}}},
        ordering_key=f"platform:cus_{n}",
    )


# The lists of tables that grow without end (core.admin_lists.LargeListAdmin), with a way to add a row.
LARGE = {
    "/admin/billing/payment/": (Payment, PaymentFactory),
    "/admin/billing/invoice/": (Invoice, InvoiceFactory),
    "/admin/billing/creditnote/": (CreditNote, CreditNoteFactory),
    "/admin/billing/subscription/": (Subscription, SubscriptionFactory),
    "/admin/events/event/": (Event, EventFactory),
    "/admin/webhooks/stripeevent/": (StripeEvent, _stripe_event),
    "/admin/core/auditlogentry/": (AuditLogEntry, _audit),
}


@pytest.mark.parametrize("path", sorted(LARGE))
def test_every_large_list_counts_a_capped_page_once_and_its_filters_read_no_distinct_values(
    db, monkeypatch, path
):
    monkeypatch.setattr(CappedCountPaginator, "cap", 3)
    model, make = LARGE[path]
    project = ProjectFactory()
    for _ in range(5):
        make(project=project)
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))

    with CaptureQueriesContext(connection) as queries:
        page = client.get(path)

    assert page.status_code == 200
    assert f"more than 3 {model._meta.verbose_name_plural}" in page.content.decode()
    table = [q["sql"] for q in queries.captured_queries if model._meta.db_table in q["sql"]]
    counts = [sql for sql in table if "COUNT(" in sql.upper()]
    assert len(counts) == 1
    assert "LIMIT 4" in counts[0]
    assert "ORDER BY" not in counts[0]
    # Filters offer values from the code or small tables, and no date hierarchy reads every row's date.
    assert not [sql for sql in table if "DISTINCT" in sql.upper()]
