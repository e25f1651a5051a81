"""Agent keys (a project key narrowed to a set of tools, read-only by default) and the money moves agents ask for,
each waiting for its one-time confirmation."""

from datetime import timedelta

from django.db import models

from core.actors import Actor
from core.ids import PublicIdField
from core.models import AuditLogEntry
from projects.models import BaseKey, Project

# How long a money move waits for its confirmation.
CONFIRMATION_TTL = timedelta(minutes=15)


class AgentKey(BaseKey):
    """A project's key for an AI agent: reaches only the tools it names (`agents.tools`), never the REST API."""

    id = PublicIdField(prefix="akey")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="agent_keys")
    tools = models.JSONField(default=list, blank=True, help_text="The names of the tools this key may call.")
    can_confirm = models.BooleanField(
        default=False,
        verbose_name="may confirm money moves",
        help_text="The key may confirm a money move (`move_confirm`), its own or another key's.",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "agent key"
        verbose_name_plural = "agent keys"

    def actor(self) -> Actor:
        """The key as the actor of what its tool calls do (the audit log's "who")."""
        return Actor(type=AuditLogEntry.ActorType.AGENT_KEY, id=self.pk, repr=f"{self.prefix}…")


class MoveConfirmation(models.Model):
    """A money move an agent asked for (a refund, a cancellation): its preview, and whether and by whom it was
    confirmed. Its id is the one-time confirmation id; the move happens once, when it is confirmed."""

    class Status(models.TextChoices):
        PENDING = "pending"
        CONFIRMED = "confirmed"
        DECLINED = "declined"
        EXPIRED = "expired"
        FAILED = "failed"

    id = PublicIdField(prefix="mvc")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="move_confirmations")
    # Keys are revoked, never deleted: a key with moves goes only with its project.
    agent_key = models.ForeignKey(
        AgentKey, on_delete=models.RESTRICT, related_name="move_confirmations", verbose_name="asked by"
    )
    tool = models.CharField(max_length=64)
    arguments = models.JSONField(default=dict)
    preview = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    expires_at = models.DateTimeField(verbose_name="expires")
    decided_by = models.CharField(max_length=255, blank=True, verbose_name="decided by")
    decided_at = models.DateTimeField(null=True, blank=True, verbose_name="decided")
    # What the move answered once made (the payment or subscription as it then was), or its error; null while
    # a confirmed move has not finished (a retry of the confirmation continues it).
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "status", "-created_at"])]
        permissions = [("decide_moveconfirmation", "Can confirm or decline agents' money moves")]
        verbose_name = "money move confirmation"
        verbose_name_plural = "money move confirmations"

    def __str__(self) -> str:
        return f"{self.tool} {self.pk}"
