from core.urls import route
from entitlements import apis

urlpatterns = [
    *route("entitlements", apis.EntitlementListApi.as_view(), "entitlements"),
    *route("entitlements/check", apis.EntitlementCheckApi.as_view(), "entitlements-check"),
    *route("entitlements/consume", apis.EntitlementConsumeApi.as_view(), "entitlements-consume"),
    *route("entitlements/release", apis.EntitlementReleaseApi.as_view(), "entitlements-release"),
    *route("entitlements/grants", apis.GrantCreateApi.as_view(), "entitlements-grants"),
    *route("entitlements/grants/<str:grant_id>", apis.GrantDeleteApi.as_view(), "entitlements-grant-detail"),
    *route("entitlements/revocations", apis.RevocationCreateApi.as_view(), "entitlements-revocations"),
    *route(
        "entitlements/revocations/<str:revocation_id>",
        apis.RevocationDeleteApi.as_view(),
        "entitlements-revocation-detail",
    ),
    *route("usage", apis.UsageApi.as_view(), "usage"),
    *route("usage/batch", apis.UsageBatchApi.as_view(), "usage-batch"),
    *route("credits", apis.CreditsApi.as_view(), "credits"),
    *route(
        "projects/<str:project_id>/entitlement_settings",
        apis.EntitlementSettingsApi.as_view(),
        "project-entitlement-settings",
    ),
]
