"""Who is acting: an operator, a platform key, a project key, or the system itself."""

from dataclasses import dataclass
from typing import Any

from core.models import AuditLogEntry


@dataclass(frozen=True)
class Actor:
    type: str
    id: str = ""
    repr: str = ""

    @classmethod
    def system(cls, name: str = "system") -> "Actor":
        return cls(type=AuditLogEntry.ActorType.SYSTEM, id="", repr=name)

    @classmethod
    def user(cls, user: Any) -> "Actor":
        return cls(type=AuditLogEntry.ActorType.USER, id=str(user.pk), repr=user.get_username())


def actor_from_request(request: Any) -> Actor:
    """The actor behind an API or admin request (`request.auth` is set by ApiKeyAuthentication)."""
    principal = getattr(request, "auth", None)
    if principal is not None and hasattr(principal, "actor"):
        actor: Actor = principal.actor()
        return actor
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return Actor.user(user)
    return Actor.system()
