"""Whole-flow tests use the same small catalog as the billing tests."""

from tests.billing.conftest import catalog, catalog_b

__all__ = ["catalog", "catalog_b"]
