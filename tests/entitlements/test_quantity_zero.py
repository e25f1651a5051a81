"""`quantity=0` asks whether nothing more would fit, and the rule is the one the docs state for every counted type
(`docs/integration.md`, "Reading"): for `credits` `balance >= quantity`, so 0 is allowed with a balance of 0 (as 0
more of a metered feature fits at its limit) — unless the feature is revoked. The Python local evaluator and the
TypeScript client's test (`clients/js/test/checks.test.ts`) hold the same rule."""

from typing import Any

import pytest

from catalog.models import Feature
from tests.entitlements.helpers import check, feature, product


@pytest.fixture
def plan(tenant_a: Any) -> None:
    p = tenant_a.project
    credits = feature(p, "ai_credits", Feature.Type.CREDITS)
    exports = feature(p, "exports", Feature.Type.METERED)
    product(p, "free", {exports: 0, credits: 0})
    p.default_product = "free"
    p.save()


def _allowed(api: Any, key: str, feature_key: str, quantity: int) -> tuple[bool, bool, int | None]:
    answer = check(api, key, "user-1", feature_key, quantity)
    return answer["allowed"], answer["enabled"], answer["balance"]


def test_zero_credits_fit_a_balance_of_zero_and_one_does_not(api: Any, tenant_a: Any, plan: None) -> None:
    assert _allowed(api, tenant_a.key, "ai_credits", 0) == (True, False, 0)
    assert _allowed(api, tenant_a.key, "ai_credits", 1) == (False, False, 0)
    assert check(api, tenant_a.key, "user-1", "exports", 0)["allowed"] is False  # a limit of 0 gives nothing


def test_zero_credits_of_a_revoked_feature_are_not_allowed(api: Any, tenant_a: Any, plan: None) -> None:
    response = api.post(
        "/api/v1/entitlements/revocations",
        {"customer": "user-1", "feature": "ai_credits", "reason": "abuse"},
        key=tenant_a.key,
    )
    assert response.status_code == 201, response.json()
    assert _allowed(api, tenant_a.key, "ai_credits", 0) == (False, False, 0)
