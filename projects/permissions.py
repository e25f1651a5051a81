"""Which kind of key may call which endpoint; a suspended project's key may call none."""

from typing import Any

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from projects.authentication import Principal


def _principal(request: Request) -> Principal | None:
    auth = request.auth
    return auth if isinstance(auth, Principal) else None


class IsProjectKey(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        principal = _principal(request)
        if principal is None:
            return False  # DRF turns this into NotAuthenticated → 401
        if principal.kind != "project" or principal.project is None:
            raise PermissionDenied(
                "This endpoint needs a project key, not a platform key.", code="wrong_key_type"
            )
        if not principal.project.is_active:
            raise PermissionDenied("This project is suspended.", code="project_suspended")
        return True


class IsPlatformKey(BasePermission):
    openapi_security = "PlatformKey"

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = _principal(request)
        if principal is None:
            return False
        if principal.kind != "platform":
            raise PermissionDenied(
                "This endpoint needs a platform key, not a project key.", code="wrong_key_type"
            )
        return True
