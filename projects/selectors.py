"""Reads of projects and keys for the API, admin and commands."""

from django.db.models import Q, QuerySet

from core.errors import NotFound
from projects.models import ApiKey, Project


def project_list() -> QuerySet[Project]:
    return Project.objects.all()


def project_get(*, id_or_slug: str) -> Project:
    project = Project.objects.filter(Q(pk=id_or_slug) | Q(slug=id_or_slug)).first()
    if project is None:
        raise NotFound(f"No such project: {id_or_slug!r}.")
    return project


def api_key_list(*, project: Project) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(project=project)


def api_key_get(*, project: Project, key_id: str) -> ApiKey:
    api_key = ApiKey.objects.filter(project=project, pk=key_id).first()
    if api_key is None:
        raise NotFound(f"No such API key: {key_id!r}.")
    return api_key
