"""Admin actions that ask the operator for a reason, call a service per selected object, and report.

Every back-office action goes through `reason_action`: an intermediate page with the form (a reason, plus the
action's own fields), then the service call, which writes the audit row with the operator and the reason.
"""

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from core.actors import Actor
from core.errors import ApiError
from core.idempotency import Operation
from core.models import AuditLogEntry

M = TypeVar("M", bound=Model)


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=500, help_text="Why? (audit log)"
    )


def reason_action(
    modeladmin: "admin.ModelAdmin[Any]",
    request: HttpRequest,
    queryset: QuerySet[M],
    *,
    title: str,
    perform: Callable[[M, dict[str, Any], Actor], str | None],
    form_class: type[forms.Form] = ReasonForm,
) -> TemplateResponse | None:
    """Renders the reason form, or (on submit) runs `perform(obj, cleaned_data, actor)` for each object."""
    if "apply" in request.POST:
        form = form_class(request.POST)
        if form.is_valid():
            actor = Actor.user(request.user)
            done = 0
            for obj in queryset:
                try:
                    note = perform(obj, form.cleaned_data, actor)
                except ApiError as exc:
                    modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
                    continue
                done += 1
                if note:
                    modeladmin.message_user(request, f"{obj}: {note}", messages.INFO)
            if done:
                modeladmin.message_user(
                    request, f"{title}: done for {done} of {len(queryset)}.", messages.SUCCESS
                )
            return None
    else:
        form = form_class()
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "queryset": queryset,
        "action": request.POST.get("action", ""),
        "opts": modeladmin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/action_with_reason.html", context)


def has_perm(request: HttpRequest, permission: str) -> bool:
    user = request.user
    return bool(user.is_active and user.has_perm(permission))


def form_operation(token: str, *, action: str, target_id: str, scope: str = "") -> Operation | None:
    """The operation of an action form's write on one object under the form's token (drawn when the form was
    shown): the same page submitted again continues it (Stripe replays its answer under the same key), resumed
    once the audit row of `action` on `target_id` names it, so the request is audited once. `scope` keeps apart
    the operations of several writes one token may start on one object. None without a token."""
    if not token:
        return None
    identity = hashlib.sha256(f"admin:{scope}{token}:{target_id}".encode()).hexdigest()[:32]
    resumed = AuditLogEntry.objects.filter(
        action=action, target_id=target_id, after__operation=identity
    ).exists()
    return Operation(identity=identity, resumed=resumed)
