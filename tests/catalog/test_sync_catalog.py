"""`manage.py sync_catalog`: the example catalog applies cleanly, a second run changes nothing, a dry run writes
nothing (locally or at Stripe), amount changes create new Stripe prices, `--archive-missing` archives, and a
catalog left half-synced by a Stripe outage is completed."""

import io
from pathlib import Path

import pytest
import stripe
import yaml
from django.conf import settings
from django.core.management import CommandError, call_command

from catalog.models import Feature, Price, Product, ProductFeature
from core.models import AuditLogEntry
from projects.models import Project
from stripe_emulator.sdk import EmulatorHTTPClient
from stripe_gateway import client

EXAMPLE = Path(settings.BASE_DIR) / "docs" / "catalog.example.yaml"


def _sync(project, path, *flags):
    out = io.StringIO()
    call_command("sync_catalog", project.slug, str(path), *flags, stdout=out)
    return out.getvalue()


def _write(tmp_path, document, name="catalog.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _stripe_state(sdk):
    return (
        sorted((p.id, p.name, p.active) for p in sdk.v1.products.list({"limit": 100}).auto_paging_iter()),
        sorted(
            (p.id, p.lookup_key, p.unit_amount, p.active)
            for p in sdk.v1.prices.list({"limit": 100}).auto_paging_iter()
        ),
        sorted(m.event_name for m in sdk.v1.billing.meters.list().data),
    )


def _local_state():
    return (
        sorted(Feature.objects.values_list("key", "type", "stripe_meter_id")),
        sorted(Product.objects.values_list("key", "active", "stripe_product_id")),
        sorted(Price.objects.values_list("key", "unit_amount", "active", "stripe_price_id")),
        ProductFeature.objects.count(),
    )


SMALL = {
    "features": [{"key": "sso", "name": "SSO", "type": "boolean"}],
    "products": [
        {
            "key": "pro",
            "name": "Pro",
            "features": {"sso": True},
            "prices": [
                {
                    "key": "pro-monthly",
                    "currency": "usd",
                    "unit_amount": 3000,
                    "type": "recurring",
                    "interval": "month",
                },
                {
                    "key": "pro-yearly",
                    "currency": "usd",
                    "unit_amount": 30000,
                    "type": "recurring",
                    "interval": "year",
                },
            ],
        },
        {"key": "team", "name": "Team", "features": {"sso": True}},
    ],
}


def test_the_example_catalog_applies_and_a_second_run_changes_nothing(api, tenant_a, stripe_sdk):
    output = _sync(tenant_a.project, EXAMPLE)

    assert "create feature api_calls" in output
    assert "create price pro-api-overage-monthly" in output
    assert output.strip().endswith("alpha: applied 23 change(s).")
    assert Feature.objects.filter(project=tenant_a.project).count() == 7
    assert Feature.objects.get(project=tenant_a.project, key="assistant").usage_formula == {
        "type": "cost",
        "markup": "1.5",
        "unit_micros": 1000,
    }
    products = {p["key"]: p for p in api.get("/api/v1/products?limit=100", key=tenant_a.key).json()["data"]}
    assert set(products) == {"free", "starter", "professional", "enterprise", "ai-credit-pack"}
    assert products["enterprise"]["features"]["api_calls"] is None
    assert products["professional"]["features"]["api_calls"] == {"limit": 500000, "overage": "allowed"}
    assert products["starter"]["features"]["seats"] == {"per_unit": 1}
    assert products["ai-credit-pack"]["features"] == {"ai_credits": {"per_unit": 1000}}
    prices = {p["key"]: p for p in api.get("/api/v1/prices?limit=100", key=tenant_a.key).json()["data"]}
    assert len(prices) == 10
    assert prices["starter-monthly"]["trial_days"] == 14
    overage = prices["pro-api-overage-monthly"]
    assert (overage["usage_type"], overage["meter"], overage["tiers"][0]["up_to"]) == (
        "metered",
        "api_calls",
        500000,
    )
    assert prices["ai-credits-1000"]["type"] == "one_time"
    seats = prices["pro-seats-monthly"]
    assert (seats["billing_scheme"], seats["tiers_mode"], seats["unit_amount"]) == (
        "tiered",
        "graduated",
        None,
    )
    assert seats["tiers"] == [
        {"up_to": 10, "unit_amount": 1200, "flat_amount": None},
        {"up_to": "inf", "unit_amount": 900, "flat_amount": 2000},
    ]
    assert all(p["stripe_price_id"] for p in prices.values())
    tenant_a.project.refresh_from_db()
    assert tenant_a.project.default_product == "free"

    sdk = stripe_sdk()
    stripe_before = _stripe_state(sdk)
    assert len(stripe_before[0]) == 5
    assert {lookup for _, lookup, _, _ in stripe_before[1]} == {f"alpha:{key}" for key in prices}
    assert stripe_before[2] == ["tg_alpha_api_calls"]
    local_before = _local_state()
    audits = AuditLogEntry.objects.count()

    assert _sync(tenant_a.project, EXAMPLE).strip() == "alpha: no changes."
    assert _stripe_state(sdk) == stripe_before
    assert _local_state() == local_before
    assert AuditLogEntry.objects.count() == audits


def test_dry_run_prints_the_plan_and_changes_nothing(tenant_a, stripe_sdk):
    output = _sync(tenant_a.project, EXAMPLE, "--dry-run")

    assert "dry run, 23 change(s) planned; nothing was changed" in output
    assert "  create product enterprise" in output
    assert '  update project alpha (default_product: "" → "free")' in output
    assert _local_state() == ([], [], [], 0)
    assert _stripe_state(stripe_sdk()) == ([], [], [])
    tenant_a.project.refresh_from_db()
    assert tenant_a.project.default_product == ""


def test_changes_are_applied_and_an_amount_change_makes_a_new_stripe_price(tmp_path, tenant_a, stripe_sdk):
    _sync(tenant_a.project, _write(tmp_path, SMALL))
    old_id = Price.objects.get(key="pro-monthly").stripe_price_id
    changed = yaml.safe_load(yaml.safe_dump(SMALL))
    changed["products"][0]["name"] = "Professional"
    changed["products"][0]["prices"][0]["unit_amount"] = 3500
    changed["products"][0]["prices"][1]["trial_days"] = 7
    path = _write(tmp_path, changed, "changed.yaml")

    dry = _sync(tenant_a.project, path, "--dry-run")
    assert 'update product pro (name: "Pro" → "Professional"; version 2: pro-monthly repriced)' in dry
    assert "update price pro-monthly (unit_amount: 3000 → 3500; new Stripe price)" in dry
    assert "update price pro-yearly (trial_days: null → 7)" in dry
    assert Price.objects.get(key="pro-monthly").unit_amount == 3000

    output = _sync(tenant_a.project, path)
    assert "applied 3 change(s)" in output
    price = Price.objects.get(key="pro-monthly")
    assert price.unit_amount == 3500
    assert price.stripe_price_history == [old_id]
    sdk = stripe_sdk()
    assert sdk.v1.prices.retrieve(price.stripe_price_id).lookup_key == "alpha:pro-monthly"
    assert sdk.v1.prices.retrieve(old_id).unit_amount == 3000
    assert sdk.v1.products.retrieve(price.product.stripe_product_id).name == "Professional"
    assert _sync(tenant_a.project, path).strip() == "alpha: no changes."


def test_missing_products_and_prices_are_archived_only_on_request(tmp_path, tenant_a, stripe_sdk):
    _sync(tenant_a.project, _write(tmp_path, SMALL))
    smaller = yaml.safe_load(yaml.safe_dump(SMALL))
    del smaller["products"][1]  # team
    del smaller["products"][0]["prices"][1]  # pro-yearly
    path = _write(tmp_path, smaller, "smaller.yaml")

    assert _sync(tenant_a.project, path).strip() == "alpha: no changes."
    assert Product.objects.get(key="team").active is True

    output = _sync(tenant_a.project, path, "--archive-missing")
    assert "archive product team" in output
    assert "archive price pro-yearly" in output
    team, yearly = Product.objects.get(key="team"), Price.objects.get(key="pro-yearly")
    assert (team.active, yearly.active) == (False, False)
    sdk = stripe_sdk()
    assert sdk.v1.products.retrieve(team.stripe_product_id).active is False
    assert sdk.v1.prices.retrieve(yearly.stripe_price_id).active is False
    assert Price.objects.get(key="pro-monthly").active is True
    assert _sync(tenant_a.project, path, "--archive-missing").strip() == "alpha: no changes."


def test_sync_completes_what_a_stripe_outage_left_unsynced(
    tmp_path, tenant_a, stripe_emulator, stripe_sdk, settings
):
    path = _write(tmp_path, SMALL)

    class Unreachable(EmulatorHTTPClient):
        """A network that refuses every connection: Stripe unreachable, a process boundary we do not own."""

        def request(self, *args, **kwargs):
            raise stripe.APIConnectionError("connection refused")

    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    client.install_http_client(Unreachable(stripe_emulator))
    with pytest.raises(CommandError, match="run the command again"):
        _sync(tenant_a.project, path)
    assert Feature.objects.filter(key="sso").exists()
    assert Product.objects.get(key="pro").stripe_product_id == ""
    client.install_http_client(EmulatorHTTPClient(stripe_emulator))

    output = _sync(tenant_a.project, path)
    assert "sync product pro (not yet at Stripe)" in output
    assert Product.objects.exclude(stripe_product_id="").count() == 2
    assert Price.objects.exclude(stripe_price_id="").count() == 2
    products, prices, _ = _stripe_state(stripe_sdk())
    assert (len(products), len(prices)) == (2, 2)
    assert _sync(tenant_a.project, path).strip() == "alpha: no changes."


def test_drift_at_stripe_is_repaired(tmp_path, tenant_a, stripe_sdk):
    path = _write(tmp_path, SMALL)
    _sync(tenant_a.project, path)
    price = Price.objects.get(key="pro-monthly")
    sdk = stripe_sdk()
    sdk.v1.prices.update(price.stripe_price_id, {"active": False})  # someone archived it in the Dashboard
    sdk.v1.products.update(price.product.stripe_product_id, {"name": "Renamed by hand"})

    output = _sync(tenant_a.project, path)
    assert "sync product pro (Stripe differs)" in output
    assert "sync price pro-monthly (Stripe differs)" in output
    assert sdk.v1.prices.retrieve(price.stripe_price_id).active is True
    assert sdk.v1.products.retrieve(price.product.stripe_product_id).name == "Pro"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["features"][0].update(type="quota"), "features[0].type"),
        (lambda d: d["products"][0]["features"].update(nope=True), "products[0].features.nope"),
        (lambda d: d["products"][0]["features"].update(sso=3), "products[0].features.sso"),
        (lambda d: d["products"][0]["prices"][0].pop("interval"), "products[0].prices[0].interval"),
        (lambda d: d["products"][0]["prices"][0].update(unit_amount=-1), "products[0].prices[0].unit_amount"),
        (lambda d: d["products"][0]["prices"][0].update(product="team"), "products[0].prices[0].product"),
        (lambda d: d["products"][1].update(key="pro"), "products: 'pro' is declared twice"),
        (lambda d: d.update(plans=[]), "plans: unknown key"),
        (lambda d: d.update(default_product="gold"), "default_product: no product 'gold'"),
    ],
)
def test_an_invalid_file_is_refused_whole_and_writes_nothing(tmp_path, tenant_a, stripe_sdk, mutate, message):
    document = yaml.safe_load(yaml.safe_dump(SMALL))
    mutate(document)
    with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _sync(tenant_a.project, _write(tmp_path, document))
    assert _local_state() == ([], [], [], 0)
    assert _stripe_state(stripe_sdk()) == ([], [], [])


def test_immutable_price_terms_are_refused_before_anything_changes(tmp_path, tenant_a):
    _sync(tenant_a.project, _write(tmp_path, SMALL))
    changed = yaml.safe_load(yaml.safe_dump(SMALL))
    changed["products"][0]["name"] = "Renamed"
    changed["products"][0]["prices"][0]["interval"] = "week"
    with pytest.raises(CommandError, match="interval of price 'pro-monthly' cannot change"):
        _sync(tenant_a.project, _write(tmp_path, changed, "changed.yaml"))
    assert Product.objects.get(key="pro").name == "Pro"


def test_unknown_project_and_unreadable_file(tmp_path, tenant_a):
    with pytest.raises(CommandError, match="No such project"):
        call_command("sync_catalog", "nope", str(EXAMPLE), stdout=io.StringIO())
    with pytest.raises(CommandError, match="Cannot read"):
        _sync(tenant_a.project, tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("features: [\n")
    with pytest.raises(CommandError, match="not valid YAML"):
        _sync(tenant_a.project, broken)


def test_projects_are_synced_independently(tmp_path, tenant_a, tenant_b, stripe_sdk):
    path = _write(tmp_path, SMALL)
    _sync(tenant_a.project, path)
    output = _sync(tenant_b.project, path)
    assert "create price pro-monthly" in output
    assert Project.objects.count() == 2
    lookup_keys = {p.lookup_key for p in stripe_sdk().v1.prices.list({"limit": 100}).data}
    assert lookup_keys == {"alpha:pro-monthly", "alpha:pro-yearly", "bravo:pro-monthly", "bravo:pro-yearly"}


def test_access_days_of_a_one_time_product_are_applied_and_idempotent(tmp_path, tenant_a, stripe_sdk):
    _sync(tenant_a.project, _write(tmp_path, SMALL))
    changed = yaml.safe_load(yaml.safe_dump(SMALL))
    changed["products"][0]["access_days"] = 30
    path = _write(tmp_path, changed, "changed.yaml")
    assert "update product pro (access_days: null → 30)" in _sync(tenant_a.project, path, "--dry-run")
    assert not Product.objects.filter(key="pro", access__isnull=False).exists()  # a dry run writes nothing
    _sync(tenant_a.project, path)
    assert Product.objects.get(project=tenant_a.project, key="pro").access.duration_days == 30
    assert _sync(tenant_a.project, path).strip() == "alpha: no changes."


def test_usage_windows_and_a_spend_cap_apply_from_yaml_and_a_second_run_changes_nothing(
    tmp_path, tenant_a, api
):
    """Billing controls in the catalog file: a metered value's `windows` and `cap` are applied as the products API
    takes them, in any key order, and a second run finds nothing to change."""
    document = yaml.safe_load(yaml.safe_dump(SMALL))
    document["features"].append({"key": "api_calls", "name": "API calls", "type": "metered"})
    value = {
        "limit": 100000,
        "overage": "allowed",
        "cap": {"amount": 5000},
        "windows": {"day": 5000, "minute": 100},
    }
    document["products"][0]["features"]["api_calls"] = value
    path = _write(tmp_path, document)
    _sync(tenant_a.project, path)
    product = api.get("/api/v1/products/pro", key=tenant_a.key).json()
    assert product["features"]["api_calls"] == {
        "limit": 100000,
        "overage": "allowed",
        "cap": {"amount": 5000, "at_cap": "block"},
        "windows": {"minute": 100, "day": 5000},
    }
    assert _sync(tenant_a.project, path).strip() == "alpha: no changes."
    document["products"][0]["features"]["api_calls"]["windows"] = {"minute": 200, "day": 100}
    with pytest.raises(
        CommandError, match="contradictory windows: 200 a minute is more than the 100 a day allows"
    ):
        _sync(tenant_a.project, _write(tmp_path, document, "contradictory.yaml"))


def test_credits_on_a_cadence_apply_from_yaml_and_a_second_run_changes_nothing(tmp_path, tenant_a, api):
    """A credits value granted every month (`cadence`) is applied from the catalog file as the products API takes
    it; a second run changes nothing; a cadence the API refuses is refused by name, nothing applied."""
    document = yaml.safe_load(yaml.safe_dump(SMALL))
    document["features"].append({"key": "ai_credits", "name": "AI credits", "type": "credits"})
    document["products"][0]["features"]["ai_credits"] = {"cadence": "month", "rollover": 200, "limit": 1000}
    path = _write(tmp_path, document)
    _sync(tenant_a.project, path)
    product = api.get("/api/v1/products/pro", key=tenant_a.key).json()
    assert product["features"]["ai_credits"] == {"limit": 1000, "rollover": 200, "cadence": "month"}
    assert _sync(tenant_a.project, path).strip() == "alpha: no changes."
    document["products"][0]["features"]["ai_credits"]["cadence"] = "fortnight"
    with pytest.raises(CommandError, match='cadence is "month" or "week"'):
        _sync(tenant_a.project, _write(tmp_path, document, "fortnight.yaml"))
    assert (
        api.get("/api/v1/products/pro", key=tenant_a.key).json()["features"]["ai_credits"]["cadence"]
        == "month"
    )


def test_a_credits_waterfall_applies_from_yaml_and_must_name_a_credits_feature(tmp_path, tenant_a, api):
    """A metered value paid past its limit from a credits feature declared in the same file is applied as the
    products API takes it; a second run changes nothing; naming a feature that is not a credits one is refused,
    nothing applied."""
    document = yaml.safe_load(yaml.safe_dump(SMALL))
    document["features"].append({"key": "summaries", "name": "Summaries", "type": "metered"})
    document["features"].append({"key": "ai_credits", "name": "AI credits", "type": "credits"})
    document["products"][0]["features"]["summaries"] = {
        "limit": 50,
        "credits": {"feature": "ai_credits", "cost": 5},
    }
    path = _write(tmp_path, document)
    _sync(tenant_a.project, path)
    product = api.get("/api/v1/products/pro", key=tenant_a.key).json()
    assert product["features"]["summaries"] == {"limit": 50, "credits": {"feature": "ai_credits", "cost": 5}}
    assert _sync(tenant_a.project, path).strip() == "alpha: no changes."
    document["products"][0]["features"]["summaries"]["credits"] = {"feature": "summaries"}
    with pytest.raises(CommandError, match="'summaries' is not a credits feature of this project"):
        _sync(tenant_a.project, _write(tmp_path, document, "wrong.yaml"))
    assert api.get("/api/v1/products/pro", key=tenant_a.key).json()["features"]["summaries"]["credits"] == {
        "feature": "ai_credits",
        "cost": 5,
    }


def test_a_limit_per_entity_applies_from_yaml_and_must_name_an_allocation_feature(tmp_path, tenant_a, api):
    """A metered value giving each seat its own limit and windows (`per_entity`), the seats feature declared in the
    same file, is applied as the products API takes it (its windows shortest first); a second run changes nothing; naming a feature that is not an
    allocation one is refused, nothing applied."""
    document = yaml.safe_load(yaml.safe_dump(SMALL))
    document["features"].append({"key": "summaries", "name": "Summaries", "type": "metered"})
    document["features"].append({"key": "team_seats", "name": "Seats", "type": "allocation"})
    document["products"][0]["features"]["team_seats"] = 10
    document["products"][0]["features"]["summaries"] = {
        "limit": 2000,
        "per_entity": {"feature": "team_seats", "limit": 50, "windows": {"day": 10, "minute": 2}},
    }
    path = _write(tmp_path, document)
    _sync(tenant_a.project, path)
    product = api.get("/api/v1/products/pro", key=tenant_a.key).json()
    assert product["features"]["summaries"] == {
        "limit": 2000,
        "per_entity": {"feature": "team_seats", "limit": 50, "windows": {"minute": 2, "day": 10}},
    }
    assert list(product["features"]["summaries"]["per_entity"]["windows"]) == ["minute", "day"]
    assert _sync(tenant_a.project, path).strip() == "alpha: no changes."
    document["products"][0]["features"]["summaries"]["per_entity"] = {"feature": "summaries", "limit": 5}
    with pytest.raises(CommandError, match="'summaries' is not an allocation feature of this project"):
        _sync(tenant_a.project, _write(tmp_path, document, "wrong.yaml"))
    assert api.get("/api/v1/products/pro", key=tenant_a.key).json()["features"]["summaries"][
        "per_entity"
    ] == {
        "feature": "team_seats",
        "limit": 50,
        "windows": {"minute": 2, "day": 10},
    }


def test_credits_per_entity_apply_from_yaml(tmp_path, tenant_a, api):
    """A credits value letting each seat hold credits of its own (`per_entity` with `on_remove`, and 25 of them
    with each grant) is applied as the products API takes it; a second run changes nothing; an unknown
    `on_remove` is refused, nothing applied."""
    document = yaml.safe_load(yaml.safe_dump(SMALL))
    document["features"].append({"key": "ai_credits", "name": "AI credits", "type": "credits"})
    document["features"].append({"key": "team_seats", "name": "Seats", "type": "allocation"})
    document["products"][0]["features"]["team_seats"] = 10
    per_seat = {"feature": "team_seats", "on_remove": "forfeit", "credits": 25}
    document["products"][0]["features"]["ai_credits"] = {"limit": 100, "per_entity": per_seat}
    path = _write(tmp_path, document)
    _sync(tenant_a.project, path)
    product = api.get("/api/v1/products/pro", key=tenant_a.key).json()
    assert product["features"]["ai_credits"] == {"limit": 100, "per_entity": per_seat}
    assert _sync(tenant_a.project, path).strip() == "alpha: no changes."
    document["products"][0]["features"]["ai_credits"]["per_entity"] = {
        "feature": "team_seats",
        "on_remove": "keep",
    }
    with pytest.raises(CommandError, match="on_remove"):
        _sync(tenant_a.project, _write(tmp_path, document, "wrong.yaml"))
    assert api.get("/api/v1/products/pro", key=tenant_a.key).json()["features"]["ai_credits"] == {
        "limit": 100,
        "per_entity": per_seat,
    }


def test_a_usage_formula_applies_from_yaml_and_a_second_run_changes_nothing(tmp_path, tenant_a, api):
    """A metered feature's usage formula (AI usage priced by model and token) is applied from the catalog file
    normalized as the features API stores it; a second run changes nothing; a changed markup is one update; an
    invalid formula is refused by name, nothing applied."""
    document = yaml.safe_load(yaml.safe_dump(SMALL))
    formula = {
        "type": "rates",
        "rates": {"input_tokens": "0.0010"},
        "models": {"gpt-4o": {"input_tokens": 2}},
    }
    document["features"].append(
        {"key": "tokens", "name": "Tokens", "type": "metered", "usage_formula": formula}
    )
    path = _write(tmp_path, document)
    _sync(tenant_a.project, path)
    stored = {
        "type": "rates",
        "rates": {"input_tokens": "0.001"},
        "models": {"gpt-4o": {"input_tokens": "2"}},
    }
    assert api.get("/api/v1/features/tokens", key=tenant_a.key).json()["usage_formula"] == stored
    assert _sync(tenant_a.project, path).strip() == "alpha: no changes."
    document["features"][-1]["usage_formula"] = {"type": "cost", "markup": "1.5", "unit_micros": 1000}
    output = _sync(tenant_a.project, _write(tmp_path, document, "cost.yaml"))
    assert "update feature tokens (usage_formula: " in output
    assert "applied 1 change(s)" in output
    assert Feature.objects.get(key="tokens").usage_formula == {
        "type": "cost",
        "markup": "1.5",
        "unit_micros": 1000,
    }
    document["features"][-1]["usage_formula"] = {"type": "cost", "markup": "-1"}
    with pytest.raises(CommandError, match=r"features\[\d+\]\.usage_formula\.markup: a decimal string"):
        _sync(tenant_a.project, _write(tmp_path, document, "bad.yaml"))
    assert Feature.objects.get(key="tokens").usage_formula["markup"] == "1.5"
