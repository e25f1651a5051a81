"""The client's `types.py` is generated from the schema the server serves (`clients/python/generate_types.py`):
a server change that moves a result's shape — a field, its type, whether it is always sent or may be null, an
enum value — fails here until the file is regenerated, and so does an answer no class covers."""

import copy
import importlib.util
import sys
import typing
from pathlib import Path
from types import ModuleType

import pytest
from tollgate_client import types
from tollgate_client.types import Payment

GENERATOR_PATH = Path(__file__).resolve().parents[2] / "clients" / "python" / "generate_types.py"


def _load_generator() -> ModuleType:
    # As when it runs as a script: its tables (generate_types_tables.py) are imported from beside it.
    if str(GENERATOR_PATH.parent) not in sys.path:
        sys.path.insert(0, str(GENERATOR_PATH.parent))
    spec = importlib.util.spec_from_file_location("generate_types", GENERATOR_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


generate_types = _load_generator()


@pytest.fixture(scope="module")
def schema():
    return generate_types.served_schema()


def test_types_py_is_what_the_served_schema_generates(schema):
    expected = generate_types.render(schema)
    current = generate_types.TYPES_PATH.read_text(encoding="utf-8")
    if current != expected:
        pytest.fail(generate_types.stale_message(current, expected), pytrace=False)


def test_a_new_field_or_enum_value_on_the_server_changes_the_file(schema):
    changed = copy.deepcopy(schema)
    components = changed["components"]["schemas"]
    components["PaymentOutput"]["properties"]["loyalty_points"] = {"type": "integer", "nullable": True}
    components["PaymentOutput"]["required"].append("loyalty_points")
    components["DeliveryStatusEnum"]["enum"].append("abandoned")
    components["InvoiceOutput"]["required"].remove("number")

    text = generate_types.render(changed)

    assert text != generate_types.render(schema)
    assert "    loyalty_points: int | None\n" in text
    assert 'EventDeliveryStatus = Literal["pending", "succeeded", "failed", "abandoned"]\n' in text
    assert "    number: str | None = None\n" in text


def test_an_answer_that_no_class_covers_is_an_error(schema):
    changed = copy.deepcopy(schema)
    changed["components"]["schemas"]["VoucherOutput"] = {
        "type": "object",
        "properties": {"id": {"type": "string"}},
    }
    changed["paths"]["/api/v1/vouchers"] = {
        "post": {
            "responses": {
                "201": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/VoucherOutput"}}
                    }
                }
            }
        }
    }
    with pytest.raises(generate_types.SchemaError, match=r"POST /api/v1/vouchers answers VoucherOutput"):
        generate_types.render(changed)


def test_a_table_entry_the_schema_has_outgrown_is_an_error(schema):
    """Once the server declares an enum itself, the generator's stand-in for it has to go."""
    changed = copy.deepcopy(schema)
    changed["components"]["schemas"]["PaymentOutput"]["properties"]["status"] = {
        "type": "string",
        "enum": ["pending", "succeeded"],
    }
    with pytest.raises(generate_types.SchemaError, match=r"ENUM_VALUES: the schema now types Payment.status"):
        generate_types.render(changed)

    gone = copy.deepcopy(schema)
    del gone["components"]["schemas"]["CartOutput"]["properties"]["items"]
    with pytest.raises(generate_types.SchemaError, match=r"Cart.items is in a table but not in the schema"):
        generate_types.render(gone)


def test_enum_fields_are_literals_and_exported():
    hints = typing.get_type_hints(Payment)
    assert typing.get_args(hints["status"]) == typing.get_args(types.PaymentStatus)
    assert "succeeded" in typing.get_args(types.PaymentStatus)
    for name in types.__all__:
        assert hasattr(types, name), name


def test_a_field_the_server_should_always_send_is_none_when_missing_not_an_error():
    payment = Payment.from_dict({"id": "pay_1"})
    assert (payment.status, payment.amount, payment.items, payment.client_secret) == (None, None, [], None)
