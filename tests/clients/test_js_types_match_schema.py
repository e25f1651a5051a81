"""The JS client's `src/types.ts` is generated from the schema the server serves (`clients/js/generate_ts_types.py`,
built on the Python client's generator and tables): a server change that moves a result's shape fails here until
the file is regenerated, as `test_sdk_types_match_schema.py` does for the Python client's `types.py`."""

import copy
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATOR_PATH = ROOT / "clients" / "js" / "generate_ts_types.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_js_types", GENERATOR_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate_js_types = _load_generator()


@pytest.fixture(scope="module")
def schema():
    return generate_js_types.load_python_generator().served_schema()


def test_types_ts_is_what_the_served_schema_generates(schema):
    expected = generate_js_types.render(schema)
    current = generate_js_types.TYPES_PATH.read_text(encoding="utf-8")
    if current != expected:
        pytest.fail(generate_js_types.stale_message(current, expected), pytrace=False)


def test_a_schema_change_changes_the_file(schema):
    changed = copy.deepcopy(schema)
    components = changed["components"]["schemas"]
    components["PaymentOutput"]["properties"]["loyalty_points"] = {"type": "integer", "nullable": True}
    components["PaymentOutput"]["required"].append("loyalty_points")
    components["DeliveryStatusEnum"]["enum"].append("abandoned")
    components["InvoiceOutput"]["required"].remove("number")

    text = generate_js_types.render(changed)

    assert "  loyalty_points: number | null;\n" in text
    assert 'export type EventDeliveryStatus = "pending" | "succeeded" | "failed" | "abandoned";\n' in text
    assert "  number?: string | null;\n" in text
    assert "  status: PaymentStatus;\n" in text


def test_the_python_annotations_become_typescript():
    ts_type = generate_js_types.ts_type
    assert ts_type("list[CartItem]") == "CartItem[]"
    assert ts_type("list[str | None]") == "Array<string | null>"
    assert ts_type("dict[str, dict[str, int]]") == "Record<string, Record<string, number>>"
    assert ts_type("Any") == "unknown"
    assert ts_type("UsageMeterStatus | None") == "UsageMeterStatus | null"


def test_the_check_mode_fails_on_a_stale_file(tmp_path, monkeypatch):
    """`--check` (what a developer runs before committing) exits 1, with the command, while the file differs."""
    result = subprocess.run(
        [sys.executable, str(GENERATOR_PATH), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stderr) == (0, "")

    stale = tmp_path / "types.ts"
    stale.write_text(generate_js_types.TYPES_PATH.read_text(encoding="utf-8").replace("number", "string", 1))
    monkeypatch.setattr(generate_js_types, "TYPES_PATH", stale)
    monkeypatch.setattr(generate_js_types, "REPO_ROOT", tmp_path)
    assert generate_js_types.main(["--check"]) == 1


def test_a_js_doc_for_a_class_that_is_gone_is_an_error(schema, monkeypatch):
    monkeypatch.setitem(generate_js_types.JS_CLASS_DOCS, "Voucher", "A voucher.")
    python = generate_js_types.load_python_generator()
    with pytest.raises(python.SchemaError, match=r"JS_CLASS_DOCS: Voucher is no longer a class"):
        generate_js_types.render(schema)
