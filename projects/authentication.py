"""Bearer-key authentication for the API, cached so that a warm request costs no SQL query and no write.

Lookups are cached in the shared cache (Redis in production) and, for at most AUTH_LOCAL_CACHE_SECONDS, in
process memory. Revoking a key or changing a project deletes the shared entries on commit, so every process
sees the change within that local TTL (one second by default). Shared entries carry the cache epoch they were
computed under (`core.cache.cache_epoch`): when the deletion cannot reach Redis (down, frozen, partitioned), the
epoch is bumped in the database instead, so an answer Redis still holds when it returns is not served again. `last_used_at` is written at most once per
API_KEY_TOUCH_INTERVAL_SECONDS per key.
"""

from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from core import context
from core.actors import Actor
from core.cache import (
    LocalCache,
    cache_add,
    cache_get,
    cache_invalidate,
    cache_set,
    epoch_current,
    epoch_stamped,
)
from core.models import AuditLogEntry
from projects.keys import hash_secret
from projects.models import ApiKey, PlatformKey, Project

_CACHE_PREFIX = "auth:v1:"
_INVALID = "invalid"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: which key, of which kind, for which project."""

    kind: Literal["project", "platform"]
    key_id: str
    key_prefix: str
    project: Project | None = None

    @property
    def idempotency_owner(self) -> str:
        return f"project:{self.project.pk}" if self.project is not None else f"platform:{self.key_id}"

    def actor(self) -> Actor:
        if self.kind == "project":
            return Actor(type=AuditLogEntry.ActorType.API_KEY, id=self.key_id, repr=f"{self.key_prefix}…")
        return Actor(type=AuditLogEntry.ActorType.PLATFORM_KEY, id=self.key_id, repr=f"{self.key_prefix}…")


def request_principal(request: Request) -> Principal:
    """The caller of an authenticated API request (the permission classes guarantee there is one)."""
    principal = request.auth
    if not isinstance(principal, Principal):
        raise AuthenticationFailed("Not authenticated.")
    return principal


def request_project(request: Request) -> Project:
    """The project whose key made this request (IsProjectKey guarantees it has one)."""
    project = request_principal(request).project
    if project is None:
        raise AuthenticationFailed("Not a project key.")
    return project


local_cache = LocalCache()


def _cache_key(key_hash: str) -> str:
    return _CACHE_PREFIX + key_hash


def _load(key_hash: str) -> Principal | None:
    api_key = ApiKey.objects.select_related("project").filter(key_hash=key_hash).first()
    if api_key is not None:
        if api_key.is_revoked:
            return None
        return Principal(
            kind="project", key_id=api_key.pk, key_prefix=api_key.prefix, project=api_key.project
        )
    platform_key = PlatformKey.objects.filter(key_hash=key_hash).first()
    if platform_key is not None and not platform_key.is_revoked:
        return Principal(kind="platform", key_id=platform_key.pk, key_prefix=platform_key.prefix)
    return None


def principal_for_secret(secret: str) -> Principal | None:
    key_hash = hash_secret(secret)
    cache_key = _cache_key(key_hash)
    cached = local_cache.get(cache_key)
    if cached is None:
        cached = epoch_current(cache_get(cache_key))  # an answer of an older epoch is a miss
        if cached is None:
            principal = _load(key_hash)
            cached = principal if principal is not None else _INVALID
            cache_set(cache_key, epoch_stamped(cached), settings.AUTH_CACHE_SECONDS)
        local_cache.set(cache_key, cached, settings.AUTH_LOCAL_CACHE_SECONDS)
    return cached if isinstance(cached, Principal) else None


def auth_cache_invalidate(key_hashes: list[str]) -> None:
    """Forgets cached lookups of these keys (call on commit of a revocation or a project change)."""
    keys = [_cache_key(key_hash) for key_hash in key_hashes]
    local_cache.discard(keys)
    if keys:
        cache_invalidate(keys)


def bearer_secret(header: str) -> str | None:
    """The key an `Authorization: Bearer <key>` header carries; None when the header is not one."""
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or " " in secret:
        return None
    return secret


def principal_enter(principal: Principal) -> None:
    """The request is `principal`'s: the log context names its key and project, and the key's use is recorded."""
    context.key_prefix.set(principal.key_prefix)
    if principal.project is not None:
        context.project_slug.set(principal.project.slug)
    _touch(principal)


def _touch(principal: Principal) -> None:
    """Records the key's use (`last_used_at`) at most once per API_KEY_TOUCH_INTERVAL_SECONDS."""
    interval = settings.API_KEY_TOUCH_INTERVAL_SECONDS
    if not local_cache.should_touch(principal.key_id, interval):
        return
    if cache_add(f"auth:touched:{principal.key_id}", 1, timeout=interval) is False:
        return  # another process touched it within the interval (None: no cache, the local throttle suffices)
    model = ApiKey if principal.kind == "project" else PlatformKey
    model.objects.filter(pk=principal.key_id).update(last_used_at=timezone.now())


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <project or platform key>`; the permission classes decide which kind may pass."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[None, Principal] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        secret = bearer_secret(header)
        if secret is None:
            raise AuthenticationFailed("Malformed Authorization header. Send `Authorization: Bearer <key>`.")
        principal = principal_for_secret(secret)
        if principal is None:
            raise AuthenticationFailed("Invalid API key: unknown or revoked.")
        principal_enter(principal)
        return None, principal

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
