"""Every object the emulator returns has every top-level field of Stripe's fixture for that resource.

Parametrised over the registry: a service that declares a ``Shape`` is covered automatically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stripe_emulator import Emulator, Shape

# Stripe's example objects (vendored beside this test; see fixtures/README.md).
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "fixtures3.json"
SHAPES = Emulator(webhook_mode="manual").registry.shapes


@pytest.fixture(scope="module")
def fixtures() -> dict[str, Any]:
    # Fail rather than skip: a silently skipped shape check would let fields go missing unnoticed.
    assert FIXTURES.exists(), f"Stripe fixtures not found at {FIXTURES}"
    return json.loads(FIXTURES.read_text())["resources"]


# Fields the vendored fixtures still carry but Stripe removed at the pinned API version (the installed SDK's
# types, generated from the same version's OpenAPI spec, no longer declare them): the emulator must not render them.
REMOVED_AT_VERSION = {"invoice": {"subscription"}}


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_object_has_every_fixture_field(shape: Shape, fixtures: dict[str, Any]) -> None:
    assert shape.fixture in fixtures, f"no fixture named {shape.fixture}"
    emulator = Emulator(webhook_mode="manual")
    obj = shape.example(emulator.account("sk_test_shapes"))
    expected = fixtures[shape.fixture]
    removed = REMOVED_AT_VERSION.get(shape.fixture, set())
    assert not removed & set(obj), f"{shape.name} renders {sorted(removed & set(obj))}, gone at this version"
    missing = sorted(set(expected) - removed - set(obj))
    assert not missing, f"{shape.name} lacks {missing}"
    assert obj["object"] == expected["object"]
    assert not [k for k in obj if k.startswith("_")], "private fields leaked"


def test_registry_covers_the_phase_one_resources() -> None:
    assert {s.fixture for s in SHAPES} >= {
        "customer",
        "deleted_customer",
        "product",
        "deleted_product",
        "price",
        "event",
        "webhook_endpoint",
        "deleted_webhook_endpoint",
    }


def test_registry_covers_what_other_clients_read() -> None:
    # dj-stripe and the like read the account behind the key and Checkout's line items.
    assert {s.fixture for s in SHAPES} >= {"account", "checkout.session", "item"}


def test_registry_covers_credit_notes_and_customer_balance_transactions() -> None:
    assert {s.fixture for s in SHAPES} >= {
        "credit_note",
        "credit_note_line_item",
        "customer_balance_transaction",
    }


def test_includable_fields_are_left_out_by_default(fixtures: dict[str, Any]) -> None:
    """Fields Stripe renders only on ``expand[]`` are absent from its fixtures and from the emulator's objects."""
    emulator = Emulator(webhook_mode="manual")
    account = emulator.account("sk_test_shapes")
    by_name = {s.name: s for s in SHAPES}
    customer = by_name["customer"].example(account)
    session = by_name["checkout.session"].example(account)
    item = by_name["item"].example(account)
    assert "sources" not in customer
    assert "sources" not in fixtures["customer"]
    assert "line_items" not in session
    assert "line_items" not in fixtures["checkout.session"]
    assert "breakdown" not in session["total_details"]
    assert "breakdown" not in fixtures["checkout.session"]["total_details"]
    for field in ("discounts", "taxes"):
        assert field not in item
        assert field not in fixtures["item"]
