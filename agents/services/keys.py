"""Agent keys: created (the secret shown once, only its hash kept, read-only tools by default), revoked, and
recognised from their secret; audited."""

from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents.models import AgentKey
from agents.services.moves import moves_of_key_decline
from agents.tools import READ_ONLY, TOOLS
from core.actors import Actor
from core.audit import audit_record
from core.errors import InvalidRequest
from projects import keys
from projects.models import Project
from projects.services.keys import key_revoked

AGENT_KEY_PREFIX = "tg_ak_"


def agent_tools_parse(tools: Iterable[str] | None) -> list[str]:
    """The tools a key is given, in the registry's order (None: the read-only ones); an unknown name is a 400."""
    wanted = set(READ_ONLY if tools is None else tools)
    unknown = sorted(wanted - set(TOOLS))
    if unknown:
        raise InvalidRequest(f"tools: no such tool {unknown[0]!r}.", code="unknown_tool", param="tools")
    return [name for name in TOOLS if name in wanted]


def agent_key_create(
    *,
    actor: Actor,
    project: Project,
    name: str = "",
    tools: Iterable[str] | None = None,
    can_confirm: bool = False,
) -> tuple[AgentKey, str]:
    """A new agent key of the project (read-only unless `tools` says otherwise); the secret is returned once."""
    granted = agent_tools_parse(tools)
    material = keys.generate(AGENT_KEY_PREFIX)
    with transaction.atomic():
        agent_key = AgentKey.objects.create(
            project=project,
            name=name,
            prefix=material.prefix,
            key_hash=material.key_hash,
            tools=granted,
            can_confirm=can_confirm,
        )
        audit_record(
            actor=actor,
            action="agent_key.created",
            target=agent_key,
            project=project,
            after={"prefix": agent_key.prefix, "name": name, "tools": granted, "can_confirm": can_confirm},
        )
    return agent_key, material.secret


def agent_key_revoke(*, actor: Actor, agent_key: AgentKey, reason: str = "") -> AgentKey:
    """Revokes a key (idempotent): its next tool call is refused, and the money moves it asked for that are still
    pending are declined (a leaked key's requests are not left for someone to confirm)."""
    with transaction.atomic():
        locked = AgentKey.objects.select_for_update().select_related("project").get(pk=agent_key.pk)
        moves_of_key_decline(agent_key=locked, actor=actor)
        key_revoked(locked, actor=actor, action="agent_key.revoked", reason=reason, project=locked.project)
    return locked


def agent_key_authenticate(*, secret: str) -> AgentKey | None:
    """The live agent key whose secret this is (with its project), or None: unknown, revoked, or not an agent
    key at all. Records its use (`last_used_at`) at most once per API_KEY_TOUCH_INTERVAL_SECONDS."""
    if not secret.startswith(AGENT_KEY_PREFIX):
        return None
    agent_key = AgentKey.objects.select_related("project").filter(key_hash=keys.hash_secret(secret)).first()
    if agent_key is None or agent_key.is_revoked:
        return None
    now = timezone.now()
    last = agent_key.last_used_at
    if last is None or (now - last).total_seconds() >= settings.API_KEY_TOUCH_INTERVAL_SECONDS:
        AgentKey.objects.filter(pk=agent_key.pk).update(last_used_at=now)
        agent_key.last_used_at = now
    return agent_key
