"""The audit log: written in the transaction of the change, or not at all."""

import pytest
from django.db import transaction

from core.actors import Actor
from core.audit import audit_record
from core.models import AuditLogEntry


@pytest.mark.django_db(transaction=True)
def test_audit_record_outside_a_transaction_is_refused(tenant_a):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(actor=Actor.system(), action="x", target=tenant_a.project)
    assert AuditLogEntry.objects.count() == 0


def test_audit_row_rolls_back_with_the_change(tenant_a):
    def change_then_fail() -> None:
        with transaction.atomic():
            audit_record(actor=Actor.system(), action="project.updated", target=tenant_a.project, reason="r")
            raise ValueError("abort")

    with pytest.raises(ValueError, match="abort"):
        change_then_fail()
    assert AuditLogEntry.objects.count() == 0


def test_audit_row_records_actor_target_and_request(api, platform_key, tenant_a):
    api.patch(
        "/api/v1/projects/alpha",
        {"name": "New", "reason": "rename"},
        key=platform_key,
        headers={"X-Request-Id": "rid-7"},
    )
    entry = AuditLogEntry.objects.get()
    assert entry.action == "project.updated"
    assert entry.target_type == "projects.project"
    assert entry.target_id == tenant_a.project.pk
    assert entry.project_id == tenant_a.project.pk
    assert entry.reason == "rename"
    assert entry.request_id == "rid-7"
    assert entry.actor_type == "platform_key"
    assert entry.actor_repr.startswith("tg_plat_")
