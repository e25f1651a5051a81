"""Project keys and platform keys: created (the secret shown once, only its hash kept), revoked; audited."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_record
from core.serializers import api_time
from projects import keys
from projects.authentication import auth_cache_invalidate
from projects.models import ApiKey, PlatformKey, Project


def api_key_add(*, actor: Actor, project: Project, name: str) -> tuple[ApiKey, str]:
    material = keys.generate(keys.PROJECT_KEY_PREFIX)
    api_key = ApiKey.objects.create(
        project=project, name=name, prefix=material.prefix, key_hash=material.key_hash
    )
    audit_record(
        actor=actor,
        action="api_key.created",
        target=api_key,
        project=project,
        after={"prefix": api_key.prefix, "name": name},
    )
    return api_key, material.secret


def api_key_create(*, actor: Actor, project: Project, name: str = "") -> tuple[ApiKey, str]:
    """A new project key; the secret is returned once and only its hash is kept."""
    with transaction.atomic():
        return api_key_add(actor=actor, project=project, name=name)


def api_key_revoke(*, actor: Actor, api_key: ApiKey, reason: str = "") -> ApiKey:
    """Revokes a key (idempotent). Every process stops accepting it within a second."""
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        if key_revoked(locked, actor=actor, action="api_key.revoked", reason=reason, project=locked.project):
            key_hash = locked.key_hash
            transaction.on_commit(lambda: auth_cache_invalidate([key_hash]))
    return locked


def key_revoked(
    locked: Any, *, actor: Actor, action: str, reason: str, project: Project | None = None
) -> bool:
    """Marks a key row (locked by the caller, in its transaction) revoked now and audits it; False, and nothing
    done, when it was revoked already."""
    if locked.revoked_at is not None:
        return False
    locked.revoked_at = timezone.now()
    locked.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action=action,
        target=locked,
        project=project,
        reason=reason,
        before={"revoked_at": None},
        after={"revoked_at": api_time(locked.revoked_at)},
    )
    return True


def platform_key_create(*, actor: Actor, name: str = "") -> tuple[PlatformKey, str]:
    material = keys.generate(keys.PLATFORM_KEY_PREFIX)
    with transaction.atomic():
        platform_key = PlatformKey.objects.create(
            name=name, prefix=material.prefix, key_hash=material.key_hash
        )
        audit_record(
            actor=actor,
            action="platform_key.created",
            target=platform_key,
            after={"prefix": platform_key.prefix},
        )
    return platform_key, material.secret


def platform_key_revoke(*, actor: Actor, platform_key: PlatformKey, reason: str = "") -> PlatformKey:
    with transaction.atomic():
        locked = PlatformKey.objects.select_for_update().get(pk=platform_key.pk)
        if key_revoked(locked, actor=actor, action="platform_key.revoked", reason=reason):
            key_hash = locked.key_hash
            transaction.on_commit(lambda: auth_cache_invalidate([key_hash]))
    return locked
