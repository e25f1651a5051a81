"""Reads of agent keys and money move confirmations; every selector takes the project."""

from django.db.models import QuerySet

from agents.models import AgentKey, MoveConfirmation
from core.errors import NotFound
from projects.models import Project


def agent_key_list(*, project: Project) -> QuerySet[AgentKey]:
    """The project's agent keys, revoked ones included (newest first)."""
    return AgentKey.objects.filter(project=project)


def agent_key_get(*, project: Project, agent_key_id: str) -> AgentKey:
    """One of the project's agent keys; another project's is a missing one (404)."""
    agent_key = agent_key_list(project=project).filter(pk=agent_key_id).first()
    if agent_key is None:
        raise NotFound(f"No such agent key: {agent_key_id!r}.")
    return agent_key


def move_confirmation_get(*, project: Project, confirmation_id: str) -> MoveConfirmation:
    """One of the project's money moves by its confirmation id; another project's is a missing one (404)."""
    confirmation = (
        MoveConfirmation.objects.filter(project=project, pk=confirmation_id)
        .select_related("project", "agent_key")
        .first()
    )
    if confirmation is None:
        raise NotFound(f"No such confirmation: {confirmation_id!r}.", param="confirmation_id")
    return confirmation
