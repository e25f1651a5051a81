"""The public plans of a project (API.md "Plans"): what a pricing page shows, read without a key.

Only active products the project marked `public` appear, with their active prices and feature values. The rendered
answer is cached per project slug and tagged with the cache epoch and the project's catalog version
(`projects.versions.project_version_key`), which every catalog write and every change of the project's status
bumps on commit (`public_plans_changed`). The version is read before the database, so an answer computed while a
change commits carries the old tag and is never served after it; a warm answer costs no SQL beyond the epoch
check. With the cache unreachable, answers are computed from the database.
"""

from collections.abc import Callable, Sequence
from typing import Any

from django.db.models import BooleanField, Count, ExpressionWrapper, F, Min, Prefetch, Q, QuerySet

from catalog.models import Price, Product
from catalog.selectors import product_list
from core.cache import VERSION_TTL_SECONDS, cache_add, cache_epoch, cache_get, cache_set
from core.errors import NotFound
from core.ids import random_token
from projects.models import Project
from projects.versions import project_version_bump, project_version_key

# Correctness comes from the tag, not the TTL: this only bounds how long an unread answer occupies the cache.
PLANS_CACHE_SECONDS = 3_600

Rendered = list[dict[str, Any]]


def plans_cache_key(slug: str) -> str:
    return f"plans:{slug}"


def public_project_get(*, slug: str) -> Project:
    """The active project with this slug; an unknown and a suspended one are the same 404."""
    project = Project.objects.filter(slug=slug, status=Project.Status.ACTIVE).first()
    if project is None:
        raise NotFound(f"No such project: {slug!r}.")
    return project


def public_products(*, project: Project) -> QuerySet[Product]:
    """The project's public, active products with their active prices and feature values, in the order a pricing
    page reads them, the same on PostgreSQL and SQLite (which sort NULL at opposite ends unless told):

    - products cheapest first, by their lowest active price in any currency (Free, Pro, Enterprise); a product
      whose active prices are all tiered (no unit amount) after those, and products without an active price
      ("contact us") last; ties by creation, then key;
    - a product's prices by currency, then cheapest first, tiered prices (no unit amount) after those of their
      currency, then by key.
    """
    active_prices = Price.objects.filter(active=True).order_by(
        "currency", F("unit_amount").asc(nulls_last=True), "key"
    )
    active = Q(prices__active=True)
    return (
        product_list(project=project)
        .filter(active=True, public=True)
        .annotate(lowest=Min("prices__unit_amount", filter=active), priced=Count("prices", filter=active))
        .prefetch_related(Prefetch("prices", queryset=active_prices), "feature_values__feature")
        .order_by(
            ExpressionWrapper(Q(priced=0), output_field=BooleanField()).asc(),
            F("lowest").asc(nulls_last=True),
            "created_at",
            "key",
        )
    )


def public_plans_changed(*, project: Project) -> None:
    """Something a pricing page shows changed (call inside the write's transaction): bumps the project's catalog
    version on commit, so the next read recomputes the cached plans (and entitlement answers, which share it)."""
    project_version_bump(project_id=project.pk)


def public_plans_keys(*, slug: str) -> Sequence[str]:
    """What `public_plans_get` reads first, for the rate limiter to fetch in its own round trip."""
    return (plans_cache_key(slug),)


def public_plans_get(
    *,
    slug: str,
    render: Callable[[QuerySet[Product]], Rendered],
    read_ahead: dict[str, Any] | None = None,
) -> Rendered:
    """The rendered public plans of the project `slug`: cached while the project's catalog version and the cache
    epoch are unchanged, else `render(public_products(...))` computed and cached. `read_ahead`: the values of
    `public_plans_keys` already fetched this request."""
    entry_key = plans_cache_key(slug)
    if read_ahead is not None and entry_key in read_ahead:
        entry = read_ahead[entry_key]
    else:
        entry = cache_get(entry_key)
    epoch = cache_epoch()
    if isinstance(entry, dict) and isinstance(entry.get("project"), str):
        version = cache_get(project_version_key(entry["project"]))
        if version and entry.get("tag") == f"{epoch}:{version}":
            body: Rendered = entry["body"]
            return body
    project = public_project_get(slug=slug)
    version = _version_ensure(
        project_version_key(project.pk)
    )  # before the database: see the module docstring
    body = render(public_products(project=project))
    if version is not None:
        cache_set(
            entry_key, {"project": project.pk, "tag": f"{epoch}:{version}", "body": body}, PLANS_CACHE_SECONDS
        )
    return body


def _version_ensure(key: str) -> str | None:
    """The current version token of `key`, creating one when there is none; None if the cache is unreachable
    (the answer is then not cached: no tag could be trusted)."""
    current = cache_get(key)
    if current:
        return str(current)
    token = random_token(12)
    added = cache_add(key, token, VERSION_TTL_SECONDS)
    if added is None:
        return None
    if added:
        return token
    existing = cache_get(key)
    return str(existing) if existing else None
