"""The audit log: who did what, to what, when and why, written in the same transaction as the change."""

from typing import Any

from django.db import models

from core import context
from core.actors import Actor
from core.db import in_transaction
from core.idempotency import Operation
from core.models import AuditLogEntry


def audit_record(
    *,
    actor: Actor,
    action: str,
    target: models.Model,
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    project: Any = None,
) -> AuditLogEntry:
    """Records an audited change. Must run inside the transaction that makes the change, so both or neither land."""
    if not in_transaction():
        raise RuntimeError("audit_record must be called inside the transaction of the change it records.")
    request_id = context.request_id.get()
    return AuditLogEntry.objects.create(
        project_id=getattr(project, "pk", ""),
        actor_type=actor.type,
        actor_id=actor.id,
        actor_repr=actor.repr[:255],
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_repr=str(target)[:255],
        reason=reason,
        before=before,
        after=after,
        request_id="" if request_id == "-" else request_id,
    )


def already_requested(
    action: str, target_id: str, operation: Operation | None, *, its_own: bool = False
) -> bool:
    """Whether a resumed `operation`'s first attempt recorded its request (`action` on `target_id`; `its_own`:
    the row names this operation, where one target takes several requests): a retry records nothing again."""
    if operation is None or not operation.resumed:
        return False
    rows = AuditLogEntry.objects.filter(action=action, target_id=target_id)
    if its_own:
        rows = rows.filter(after__operation=operation.identity)
    return rows.exists()
