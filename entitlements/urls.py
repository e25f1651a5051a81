from core.urls import route
from entitlements.apis.check import (
    EntitlementConsumeApi,
    EntitlementListApi,
    EntitlementReleaseApi,
)
from entitlements.apis.check_fast import entitlement_check_view
from entitlements.apis.credits import CreditsApi
from entitlements.apis.entities import EntitiesApi, EntityDetailApi
from entitlements.apis.grants import GrantCreateApi, GrantDeleteApi, RevocationCreateApi, RevocationDeleteApi
from entitlements.apis.holds import HoldConfirmApi, HoldCreateApi, HoldDetailApi, HoldReleaseApi, HoldUsageApi
from entitlements.apis.local import EntitlementChangesApi, EntitlementSnapshotApi
from entitlements.apis.recharge import AutoRechargeDetailApi, AutoRechargesApi
from entitlements.apis.settings import EntitlementSettingsApi
from entitlements.apis.spend_caps import SpendCapDeleteApi, SpendCapsApi
from entitlements.apis.thresholds import ThresholdDeleteApi, ThresholdsApi
from entitlements.apis.usage import UsageApi, UsageBatchApi
from entitlements.apis.usage_corrections import UsageCorrectionDetailApi, UsageCorrectionsApi

urlpatterns = [
    *route("entitlements", EntitlementListApi.as_view(), "entitlements"),
    *route("entitlements/check", entitlement_check_view, "entitlements-check"),
    *route("entitlements/snapshot", EntitlementSnapshotApi.as_view(), "entitlements-snapshot"),
    *route("entitlements/changes", EntitlementChangesApi.as_view(), "entitlements-changes"),
    *route("entitlements/consume", EntitlementConsumeApi.as_view(), "entitlements-consume"),
    *route("entitlements/release", EntitlementReleaseApi.as_view(), "entitlements-release"),
    *route("entitlements/holds", HoldCreateApi.as_view(), "entitlements-holds"),
    *route("entitlements/holds/<str:hold_id>", HoldDetailApi.as_view(), "entitlements-hold-detail"),
    *route("entitlements/holds/<str:hold_id>/confirm", HoldConfirmApi.as_view(), "entitlements-hold-confirm"),
    *route("entitlements/holds/<str:hold_id>/release", HoldReleaseApi.as_view(), "entitlements-hold-release"),
    *route("entitlements/holds/<str:hold_id>/usage", HoldUsageApi.as_view(), "entitlements-hold-usage"),
    *route("entitlements/thresholds", ThresholdsApi.as_view(), "entitlements-thresholds"),
    *route(
        "entitlements/thresholds/<str:threshold_id>",
        ThresholdDeleteApi.as_view(),
        "entitlements-threshold-detail",
    ),
    *route("entitlements/spend_caps", SpendCapsApi.as_view(), "entitlements-spend-caps"),
    *route(
        "entitlements/spend_caps/<str:cap_id>", SpendCapDeleteApi.as_view(), "entitlements-spend-cap-detail"
    ),
    *route("entitlements/entities", EntitiesApi.as_view(), "entitlements-entities"),
    *route("entitlements/entities/<str:entity_id>", EntityDetailApi.as_view(), "entitlements-entity-detail"),
    *route("entitlements/auto_recharges", AutoRechargesApi.as_view(), "entitlements-auto-recharges"),
    *route(
        "entitlements/auto_recharges/<str:recharge_id>",
        AutoRechargeDetailApi.as_view(),
        "entitlements-auto-recharge-detail",
    ),
    *route("entitlements/grants", GrantCreateApi.as_view(), "entitlements-grants"),
    *route("entitlements/grants/<str:grant_id>", GrantDeleteApi.as_view(), "entitlements-grant-detail"),
    *route("entitlements/revocations", RevocationCreateApi.as_view(), "entitlements-revocations"),
    *route(
        "entitlements/revocations/<str:revocation_id>",
        RevocationDeleteApi.as_view(),
        "entitlements-revocation-detail",
    ),
    *route("usage", UsageApi.as_view(), "usage"),
    *route("usage/batch", UsageBatchApi.as_view(), "usage-batch"),
    *route("usage/corrections", UsageCorrectionsApi.as_view(), "usage-corrections"),
    *route(
        "usage/corrections/<str:correction_id>", UsageCorrectionDetailApi.as_view(), "usage-correction-detail"
    ),
    *route("credits", CreditsApi.as_view(), "credits"),
    *route(
        "projects/<str:project_id>/entitlement_settings",
        EntitlementSettingsApi.as_view(),
        "project-entitlement-settings",
    ),
]
