"""OpenAPI description of the bearer-key authentication: which kind of key each operation needs."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "projects.authentication.ApiKeyAuthentication"
    name = "ProjectKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "description": "A project's secret API key (`tg_sk_…`)."}

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list[str]]:
        # Permission classes name the scheme they demand (IsPlatformKey → PlatformKey, declared in settings).
        for permission in auto_schema.view.get_permissions():
            scheme = getattr(permission, "openapi_security", None)
            if scheme:
                return {scheme: []}
        return {self.name: []}
