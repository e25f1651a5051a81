"""The data of the scale benchmark (bench.scale): one side's projects (a World) made in the database the default
connection points at, and filled to one size in bulk.

Rows are written in bulk (`INSERT … SELECT generate_series` for customers and usage events, `bulk_create`
elsewhere), never through the API. The reconciled project's Stripe objects are made in the side's own in-process
emulator by the emulator's own backends (`CustomersBackend.customer_create`,
`SubscriptionsBackend.subscription_create_internal`: what `POST /v1/customers` and `POST /v1/subscriptions` run
after parsing their parameters), without the SDK's round trip; their mirrors by one untimed `reconcile --fix`, as
the webhooks would have left them.
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

INGEST_FILLER_CUSTOMERS = 1000
PAGE_AFTER = 100_000  # the deep page: after the 100,000th newest customer (or the list's last page)
USAGE_CHUNK = 500_000


@dataclass
class World:
    """One side's projects, in its own database, and what they hold."""

    database: str
    check: dict[str, Any]
    ingest: dict[str, Any]
    reconcile: Any
    revenue: dict[str, Any]
    filler: Any
    session: str
    emulator: Any
    stripe_price: str
    sizes: dict[str, int] = field(default_factory=dict)
    cursor: str = ""
    position: int = 0
    listed: int = 0


def _insert_select(model: Any, count: int, values: dict[str, str], params: dict[str, Any]) -> None:
    """`count` rows of `model` in one `INSERT … SELECT … FROM generate_series(1, count) AS n`: `values` gives the
    SQL of columns (of `n` and `params`); every other column gets its field's default, as the ORM would write it."""
    from django.db import connection

    columns, expressions, args = [], [], dict(params)
    for model_field in model._meta.concrete_fields:
        column = model_field.column
        columns.append(connection.ops.quote_name(column))
        if column in values:
            expressions.append(values[column])
        elif getattr(model_field, "auto_now", False) or getattr(model_field, "auto_now_add", False):
            expressions.append("now()")
        elif model_field.has_default() or not model_field.null:
            default = model_field.get_default()  # "" for a text field without one, as the ORM writes
            args[f"default_{column}"] = model_field.get_db_prep_save(default, connection)
            expressions.append(f"%(default_{column})s")
        else:
            expressions.append("NULL")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
            f"SELECT {', '.join(expressions)} FROM generate_series(1, %(count)s) AS n",
            {**args, "count": count},
        )


def _customers_seed(project: Any, first: int, count: int, prefix: str) -> None:
    """`count` customers of `project` numbered from `first`, a second apart (every tenth tied with the one before,
    as imports make ties)."""
    from customers.models import Customer

    if count <= 0:
        return
    _insert_select(
        Customer,
        count,
        {
            "id": "'cust_' || substr(md5(%(project)s || %(prefix)s || (n + %(first)s)), 1, 24)",
            "project_id": "%(project)s",
            "external_id": "%(prefix)s || (n + %(first)s)",
            "email": "%(prefix)s || (n + %(first)s) || '@example.com'",
            "currency": "CASE WHEN n %% 2 = 0 THEN 'usd' ELSE 'eur' END",
            "created_at": "timestamptz '2025-01-01 00:00:00+00' + make_interval(secs => n + %(first)s "
            "- CASE WHEN (n + %(first)s) %% 10 = 9 THEN 1 ELSE 0 END)",
        },
        {"project": project.pk, "first": first, "prefix": prefix},
    )


def _usage_seed(project: Any, feature: Any, customers: list[str], count: int) -> None:
    """`count` usage events of `feature` spread over `customers`, in chunks (each its own transaction). The rows
    are consistent by construction, so their foreign keys are not checked row by row (`session_replication_role
    = replica` for the chunk, where the role may set it: a 5-million-row fill takes minutes instead of most of
    an hour); the indexes are maintained as for any insert."""
    from django.db import connection, transaction

    from entitlements.models import UsageEvent

    for start in range(0, count, USAGE_CHUNK):
        size = min(USAGE_CHUNK, count - start)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
                )
                if cursor.fetchone()[0]:
                    cursor.execute("SET LOCAL session_replication_role = replica")
            _insert_select(
                UsageEvent,
                size,
                {
                    "id": "'uev_' || substr(md5(%(project)s || 'uev' || (n + %(first)s)), 1, 24)",
                    "project_id": "%(project)s",
                    "customer_id": "(%(customers)s::text[])[1 + (n %% %(many)s)]",
                    "feature_id": "%(feature)s",
                    "event_id": "'seed-' || (n + %(first)s)",
                    "kind": "'usage'",
                    "quantity": "1",
                    "timestamp": "now() - make_interval(secs => n %% 86400)",
                    "properties": "'{}'::jsonb",
                },
                {
                    "project": project.pk,
                    "feature": feature.pk,
                    "customers": customers,
                    "many": len(customers),
                    "first": start,
                },
            )


def _vacuum() -> None:
    """The tables as autovacuum leaves them after the seeding's inserts and the fold's deletes (fresh statistics,
    no dead index entries), whether or not the server runs autovacuum."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def _revenue_setup(slug: str) -> dict[str, Any]:
    from catalog.models import Price, Product
    from core.actors import Actor
    from projects.services import projects as project_services

    project, _, secret = project_services.project_create(actor=Actor.system("bench"), slug=slug, name=slug)
    product = Product.objects.create(project=project, key="pro", name="Pro")
    price = Price.objects.create(
        project=project,
        product=product,
        key="pro-monthly",
        currency="usd",
        unit_amount=3000,
        type=Price.Type.RECURRING,
        interval=Price.Interval.MONTH,
        stripe_price_id=f"price_{slug}",
    )
    return {"project": project, "secret": secret, "product": product, "price": price}


def world_create(database: str) -> World:
    """One side's projects in the database the default connection points at (`database`), with a Stripe
    emulator of its own (installed as the gateway's client: the caller switches it with the database)."""
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client

    from bench.entitlements import _setup as check_setup
    from catalog.models import Price, Product
    from core.actors import Actor
    from core.ids import random_token
    from projects.services import projects as project_services
    from stripe_emulator import Emulator
    from stripe_emulator.sdk import EmulatorHTTPClient, make_client
    from stripe_gateway.client import install_http_client

    tag = random_token(6).lower()
    emulator = Emulator(webhook_mode="manual")
    install_http_client(EmulatorHTTPClient(emulator))
    stripe = make_client(emulator, settings.STRIPE_SECRET_KEY)
    stripe_product = stripe.v1.products.create({"name": "Pro"})
    stripe_price = stripe.v1.prices.create(
        {
            "product": stripe_product.id,
            "currency": "usd",
            "unit_amount": 3000,
            "recurring": {"interval": "month"},
        }
    )
    reconciled, _, _ = project_services.project_create(
        actor=Actor.system("bench"), slug=f"bench-scale-rec-{tag}", name="Bench reconciliation"
    )
    product = Product.objects.create(project=reconciled, key="pro", name="Pro")
    Price.objects.create(
        project=reconciled,
        product=product,
        key="pro-monthly",
        currency="usd",
        unit_amount=3000,
        type=Price.Type.RECURRING,
        interval=Price.Interval.MONTH,
        stripe_price_id=stripe_price.id,
    )
    filler, _, _ = project_services.project_create(
        actor=Actor.system("bench"), slug=f"bench-scale-rows-{tag}", name="Bench rows"
    )
    operator = User.objects.create_superuser(f"bench-scale-{tag}", password=random_token(20))
    browser = Client()
    browser.force_login(operator)
    return World(
        database=database,
        check=check_setup(),
        ingest=check_setup(),
        reconcile=reconciled,
        revenue=_revenue_setup(f"bench-scale-revenue-{tag}"),
        filler=filler,
        session=browser.cookies[settings.SESSION_COOKIE_NAME].value,
        emulator=emulator,
        stripe_price=stripe_price.id,
    )


def _stripe_seed(world: World, count: int) -> None:
    """`count` customers of the reconciled project, each with a customer and a subscription (billed by invoice,
    30 days) at Stripe, made by the emulator's own backends under its account lock, as its API handlers make
    them; the customers' `stripe_customer_id` written in one statement."""
    from django.conf import settings
    from django.db import connection

    from customers.models import Customer
    from stripe_emulator.customers.models import CustomersBackend
    from stripe_emulator.subscriptions.models import SubscriptionsBackend

    _customers_seed(world.reconcile, 0, count, "user-")
    customers = list(
        Customer.objects.filter(project=world.reconcile, external_id__startswith="user-")
        .order_by("created_at", "pk")
        .values_list("pk", "email")
    )
    account = world.emulator.account(settings.STRIPE_SECRET_KEY)
    linked = []
    with account.lock:
        for pk, email in customers:
            stripe_customer = account.backend(CustomersBackend).customer_create(
                email=email, metadata={"tollgate_customer": pk}
            )
            account.backend(SubscriptionsBackend).subscription_create_internal(
                customer=stripe_customer["id"],
                items=[{"price": world.stripe_price}],
                default_payment_method=None,
                metadata={"tollgate_customer": pk},
                collection_method="send_invoice",
                days_until_due=30,
            )
            linked.append((pk, stripe_customer["id"]))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Customer._meta.db_table} AS c SET stripe_customer_id = v.stripe "
            "FROM unnest(%s::text[], %s::text[]) AS v(pk, stripe) WHERE c.id = v.pk",
            [[pk for pk, _ in linked], [stripe for _, stripe in linked]],
        )


def world_fill(world: World, sizes: dict[str, int], admin_rows: int) -> dict[str, float]:
    """Fills the side's projects to `sizes` (names as bench.scale.SIZES) and the customers table to `admin_rows`;
    returns the seconds each part took."""
    from bench.metrics import revenue_rows_seed
    from billing.services.reconcile import reconcile
    from billing.services.revenue_figures import revenue_fold
    from customers.models import Customer

    took: dict[str, float] = {}

    def timed(name: str, started: float) -> float:
        now = time.perf_counter()
        took[name] = now - started
        return now

    started = time.perf_counter()
    _customers_seed(world.check["project"], 0, sizes["check_customers"], "user-")
    if sizes["check_events"]:
        customers = list(
            Customer.objects.filter(project=world.check["project"])
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        _usage_seed(world.check["project"], world.check["calls"], customers, sizes["check_events"])
    started = timed("check", started)
    if sizes["ingest_rows"]:
        _customers_seed(world.ingest["project"], 0, INGEST_FILLER_CUSTOMERS, "filler-")
        customers = list(
            Customer.objects.filter(
                project=world.ingest["project"], external_id__startswith="filler-"
            ).values_list("pk", flat=True)
        )
        _usage_seed(world.ingest["project"], world.ingest["calls"], customers, sizes["ingest_rows"])
    started = timed("ingest", started)
    if sizes["revenue"]:
        revenue_rows_seed(
            project=world.revenue["project"],
            product=world.revenue["product"],
            price=world.revenue["price"],
            first=0,
            count=sizes["revenue"],
            now=datetime.now(UTC),
        )
        while revenue_fold():
            pass
    started = timed("revenue", started)
    if sizes["reconcile"]:
        _stripe_seed(world, sizes["reconcile"])
        started = timed("reconcile (Stripe)", started)
        run = reconcile(
            project=world.reconcile, fix=True
        )  # the mirrors, as the webhooks would have left them
        assert run.status == "completed", (run.status, run.error)
    started = timed("reconcile (mirrors)", started)
    # The admin list's rows: the filler project tops the customers table up to the size asked.
    total = Customer.objects.count()
    _customers_seed(world.filler, 0, admin_rows - total, "row-")
    world.sizes = {**sizes, "admin_rows": Customer.objects.count()}
    # The cursor of the deep page: after the PAGE_AFTER-th newest customer (or the list's last full page).
    listing = Customer.objects.filter(project=world.check["project"]).order_by("-created_at", "-pk")
    world.listed = listing.count()
    world.position = max(0, min(PAGE_AFTER, world.listed - 21))
    world.cursor = str(listing.values_list("pk", flat=True)[world.position])
    started = timed("admin rows", started)
    _vacuum()
    timed("vacuum", started)
    return took
