"""Fixtures of the entitlement tests."""

from collections.abc import Callable
from typing import Any

import pytest

from entitlements.services.recompute import entitlements_recompute


@pytest.fixture
def recompute(django_capture_on_commit_callbacks: Any) -> Callable[[Any], None]:
    """Calls the recompute hook as billing does after a change, running its on-commit work."""

    def run(customer: Any) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            entitlements_recompute(customer=customer)

    return run


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """Runs a service as if its transaction committed (on-commit work runs)."""

    def run(function: Callable[..., Any], **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return function(**kwargs)

    return run
