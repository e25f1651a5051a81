"""A project's answers version: one cache key whose token changes on commit of any change that alters every
cached answer of the project at once — its catalog (features, products, prices and what they give) or its settings
(default product, status).

Apps below entitlements announce such a change here instead of calling up: the entitlement snapshots
(`entitlements.cache`) and the public plans (`catalog.public`) carry the token they were computed under and are not
served once it moved. Tokens are random, so a lost key cannot bring an old one back; a bump that cannot reach the
cache bumps the cache epoch in the database instead (`core.cache.cache_epoch_bump`), which every cached answer is
tagged with too.
"""

import logging

from django.core.cache import cache
from django.db import transaction

from core.cache import cache_epoch_bump
from core.ids import random_token

logger = logging.getLogger(__name__)

VERSION_TTL_SECONDS = 7 * 86_400


def project_version_key(project_id: str) -> str:
    return f"ent:pv:{project_id}"


def project_version_bump(*, project_id: str) -> None:
    """Every cached answer of the project is stale once the current transaction commits (at once outside one)."""
    key = project_version_key(project_id)

    def bump() -> None:
        try:
            cache.set(key, random_token(12), VERSION_TTL_SECONDS)
        except Exception as exc:  # the version could not move: no cached answer of this epoch is trusted now
            logger.warning("Project version bump failed (%s).", exc.__class__.__name__)
            cache_epoch_bump(f"project version bump failed ({exc.__class__.__name__})")

    transaction.on_commit(bump)
