"""OpenAPI description of the bearer-key authentication: which kind of key each operation needs."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "projects.authentication.ApiKeyAuthentication"
    name = "ProjectKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A project's secret API key (`tg_sk_…`): every route but `/api/v1/projects…`.",
        }

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list[str]]:
        # Permission classes name the scheme they demand (IsPlatformKey → PlatformKey, declared in settings).
        for permission in auto_schema.view.get_permissions():
            scheme = getattr(permission, "openapi_security", None)
            if scheme:
                return {scheme: []}
        return {self.name: []}


# Swagger's Authorize dialog lists the schemes in this order: the project key, which every tenant route takes, first
# (a project key pasted into the first box, the platform key's, was sent to no tenant route: 401 on every one).
SCHEME_ORDER = ("ProjectKey", "PlatformKey")
OPERATIONS = {"get", "post", "put", "patch", "delete"}


def security_schemes_in_order(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """Postprocessing hook: the project key's scheme first, and every operation declares the scheme it takes
    (`security: []` for those read without a key, which would otherwise say nothing)."""
    schemes = result.get("components", {}).get("securitySchemes")
    if schemes:
        ordered = {name: schemes[name] for name in SCHEME_ORDER if name in schemes}
        ordered.update({name: scheme for name, scheme in schemes.items() if name not in ordered})
        result["components"]["securitySchemes"] = ordered
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method in OPERATIONS:
                operation.setdefault("security", [])
    return result
