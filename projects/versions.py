"""A project's answers version: one cache key whose token changes on commit of any change that alters every
cached answer of the project at once — its catalog (features, products, prices and what they give) or its settings
(default product, status).

Apps below entitlements announce such a change here instead of calling up: the entitlement snapshots
(`entitlements.cache`) and the public plans (`catalog.public`) carry the token they were computed under and are not
served once it moved. Tokens are random, so a lost key cannot bring an old one back; a bump that cannot reach the
cache bumps the cache epoch in the database instead (`core.cache.cache_epoch_bump`), which every cached answer is
tagged with too.
"""

from core.cache import bump_on_commit


def project_version_key(project_id: str) -> str:
    return f"ent:pv:{project_id}"


def project_version_bump(*, project_id: str) -> None:
    """Every cached answer of the project is stale once the current transaction commits (at once outside one)."""
    bump_on_commit([project_version_key(project_id)])
