"""`manage.py sync_catalog` and product versions (#52 point 1): a file may state the version of each product's
feature values; a file that matches applies (publishing the next version when it changes them), one written against
another version is refused whole, nothing overwritten."""

import pytest
import yaml
from django.core.management import CommandError

from catalog.models import Price, Product, ProductVersion
from core.models import AuditLogEntry
from stripe_gateway.client import install_http_client
from tests.catalog.test_catalog_prices import Network
from tests.catalog.test_sync_catalog import SMALL, _sync, _write


def _document(**changes):
    document = yaml.safe_load(yaml.safe_dump(SMALL))
    document["products"][0].update(changes)
    return document


def _state():
    return (
        Product.objects.get(key="pro").version,
        sorted(ProductVersion.objects.filter(product__key="pro").values_list("number", "features")),
    )


def test_a_file_naming_the_next_version_publishes_it_and_a_second_run_changes_nothing(tmp_path, tenant_a):
    _sync(tenant_a.project, _write(tmp_path, _document(version=1)))
    assert _state() == (1, [(1, {"sso": True})])
    assert "no changes" in _sync(tenant_a.project, _write(tmp_path, _document(version=1)))

    path = _write(tmp_path, _document(version=2, features={"sso": False}), "v2.yaml")
    _sync(tenant_a.project, path)
    assert _state() == (2, [(1, {"sso": True}), (2, {"sso": False})])
    assert "no changes" in _sync(tenant_a.project, path)
    # A file that states no version applies as before: a change publishes the next one.
    _sync(tenant_a.project, _write(tmp_path, _document(features={"sso": True}), "any.yaml"))
    assert _state()[0] == 3


@pytest.mark.parametrize(
    ("stated", "features", "message"),
    [
        (
            1,
            {"sso": True},
            "declares version 1, but 'pro' is at version 2; the file's feature values, account cap and prices would "
            "publish version 3",
        ),
        (3, {"sso": False}, "declares version 3, but 'pro' is at version 2\\."),
        (
            2,
            {"sso": True},
            "declares version 2, but 'pro' is at version 2; the file's feature values, account cap and prices would "
            "publish version 3",
        ),
    ],
)
def test_a_file_written_against_another_version_is_refused_and_nothing_changes(
    tmp_path, tenant_a, stated, features, message
):
    _sync(tenant_a.project, _write(tmp_path, _document()))
    _sync(tenant_a.project, _write(tmp_path, _document(features={"sso": False}), "v2.yaml"))
    before = _state()
    with pytest.raises(CommandError, match=f"products\\[0\\]\\.version: the file {message}"):
        _sync(
            tenant_a.project,
            _write(tmp_path, _document(version=stated, features=features, name="X"), "bad.yaml"),
        )
    assert _state() == before
    assert Product.objects.get(key="pro").name == "Pro"


def test_a_new_product_must_be_version_1_and_a_bad_version_is_refused(tmp_path, tenant_a):
    with pytest.raises(CommandError, match="declares version 2, but 'pro' does not exist yet"):
        _sync(tenant_a.project, _write(tmp_path, _document(version=2)))
    with pytest.raises(CommandError, match=r"products\[0\]\.version: expected a version number"):
        _sync(tenant_a.project, _write(tmp_path, _document(version="two"), "bad.yaml"))
    assert Product.objects.count() == 0


def _reprice(document, amount):
    document["products"][0]["prices"][0]["unit_amount"] = amount
    return document


def _versions():
    return [
        (v.number, v.note, v.features, [(p["key"], p["unit_amount"], p["stripe_price_id"]) for p in v.prices])
        for v in ProductVersion.objects.filter(product__key="pro").order_by("number")
    ]


def test_a_file_repricing_an_active_price_publishes_the_next_version_with_it(tmp_path, tenant_a, stripe_sdk):
    """`pro-monthly` 30.00 → 35.00 from the file: version 2 sells it (its new Stripe price), version 1 keeps
    30.00 and the Stripe price its subscribers bought; the file's `version: 2` is the one it publishes, and a
    second run changes nothing."""
    _sync(tenant_a.project, _write(tmp_path, _document(version=1)))
    monthly, yearly = (Price.objects.get(key=key).stripe_price_id for key in ("pro-monthly", "pro-yearly"))
    path = _write(tmp_path, _reprice(_document(version=2), 3500), "v2.yaml")

    dry = _sync(tenant_a.project, path, "--dry-run")
    assert "update product pro (version 2: pro-monthly repriced)" in dry
    assert "update price pro-monthly (unit_amount: 3000 → 3500; new Stripe price)" in dry
    assert Product.objects.get(key="pro").version == 1

    assert "applied 2 change(s)" in _sync(tenant_a.project, path)
    repriced = Price.objects.get(key="pro-monthly").stripe_price_id
    assert repriced not in ("", monthly)
    assert _versions() == [
        (1, "", {"sso": True}, [("pro-monthly", 3000, monthly), ("pro-yearly", 30000, yearly)]),
        (
            2,
            "price pro-monthly repriced",
            {"sso": True},
            [("pro-monthly", 3500, repriced), ("pro-yearly", 30000, yearly)],
        ),
    ]
    sdk = stripe_sdk()
    assert (sdk.v1.prices.retrieve(repriced).unit_amount, sdk.v1.prices.retrieve(monthly).unit_amount) == (
        3500,
        3000,
    )
    updated = AuditLogEntry.objects.get(
        action="price.updated", target_id=Price.objects.get(key="pro-monthly").pk
    )
    assert updated.reason == "version 2 of pro published"
    assert _sync(tenant_a.project, path).strip() == "alpha: no changes."
    assert Product.objects.get(key="pro").version == 2


def test_new_feature_values_and_a_new_price_in_one_file_publish_one_version(tmp_path, tenant_a, stripe_sdk):
    _sync(tenant_a.project, _write(tmp_path, _document()))
    path = _write(tmp_path, _reprice(_document(version=2, features={"sso": False}), 3500), "v2.yaml")
    assert (
        'update product pro (features: {"sso": true} → {"sso": false}; version 2: pro-monthly repriced)'
        in (_sync(tenant_a.project, path))
    )
    assert [(n, features, prices[0][:2]) for n, _, features, prices in _versions()] == [
        (1, {"sso": True}, ("pro-monthly", 3000)),
        (2, {"sso": False}, ("pro-monthly", 3500)),
    ]


def test_a_file_that_reprices_but_states_the_current_version_is_refused_and_nothing_changes(
    tmp_path, tenant_a, stripe_sdk
):
    _sync(tenant_a.project, _write(tmp_path, _document(version=1)))
    before, stripe_prices = _versions(), len(stripe_sdk().v1.prices.list({"limit": 100}).data)
    with pytest.raises(
        CommandError,
        match="declares version 1, but 'pro' is at version 1; the file's feature values, account cap and prices would "
        "publish version 2",
    ):
        _sync(tenant_a.project, _write(tmp_path, _reprice(_document(version=1), 3500), "bad.yaml"))
    assert _versions() == before
    assert Price.objects.get(key="pro-monthly").unit_amount == 3000
    assert len(stripe_sdk().v1.prices.list({"limit": 100}).data) == stripe_prices


def test_an_inactive_price_repriced_or_a_price_archived_with_new_terms_publishes_no_version(
    tmp_path, tenant_a, stripe_sdk
):
    """Only a price on sale is sold by a version: new terms for one being archived publish nothing."""
    _sync(tenant_a.project, _write(tmp_path, _document(version=1)))
    document = _reprice(_document(version=1), 3500)
    document["products"][0]["prices"][0]["active"] = False
    _sync(tenant_a.project, _write(tmp_path, document, "archive.yaml"))
    assert (Product.objects.get(key="pro").version, Price.objects.get(key="pro-monthly").active) == (1, False)


def test_a_run_that_lost_stripes_answer_to_the_new_price_is_finished_by_the_next_with_one_stripe_price(
    tmp_path, tenant_a, stripe_emulator, stripe_sdk, settings
):
    """Version 2 is published, then Stripe's answer to the repriced price is lost: the run stops. The next run
    makes nothing twice — it finds the price Stripe made by its lookup key — and version 2 gets its Stripe id."""
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    _sync(tenant_a.project, _write(tmp_path, _document(version=1)))
    old = Price.objects.get(key="pro-monthly").stripe_price_id
    path = _write(tmp_path, _reprice(_document(version=2), 3500), "v2.yaml")
    network = Network(stripe_emulator, lose={("POST", "v1/prices")})
    install_http_client(network)
    with pytest.raises(CommandError):
        _sync(tenant_a.project, path)
    assert _versions()[1][3][0] == ("pro-monthly", 3500, None)  # published; its Stripe price unknown

    network.lose.clear()
    assert "sync price pro-monthly (not yet at Stripe)" in _sync(tenant_a.project, path)
    made = [
        (p.id, p.unit_amount)
        for p in stripe_sdk().v1.prices.list({"limit": 100}).data
        if p.metadata.to_dict().get("tollgate_price") == Price.objects.get(key="pro-monthly").pk
    ]
    new = Price.objects.get(key="pro-monthly").stripe_price_id
    assert sorted(made) == sorted([(old, 3000), (new, 3500)])
    assert [v[3][0] for v in _versions()] == [("pro-monthly", 3000, old), ("pro-monthly", 3500, new)]
    assert _sync(tenant_a.project, path).strip() == "alpha: no changes."


def test_a_file_changing_the_account_cap_publishes_the_next_version_and_a_stale_one_is_refused(
    tmp_path, tenant_a
):
    _sync(tenant_a.project, _write(tmp_path, _document(version=1)))
    cap = {"amount": 20000, "currency": "usd", "at_cap": "alert"}
    before = _state()
    with pytest.raises(
        CommandError,
        match="declares version 1, but 'pro' is at version 1; the file's feature values, account cap and prices "
        "would publish version 2",
    ):
        _sync(tenant_a.project, _write(tmp_path, _document(version=1, account_cap=cap), "stale.yaml"))
    assert (_state(), Product.objects.get(key="pro").account_cap) == (before, None)

    path = _write(tmp_path, _document(version=2, account_cap=cap), "v2.yaml")
    _sync(tenant_a.project, path)
    assert _state() == (2, [(1, {"sso": True}), (2, {"sso": True})])
    assert list(ProductVersion.objects.filter(product__key="pro").values_list("number", "account_cap")) == [
        (1, None),
        (2, cap),
    ]
    assert "no changes" in _sync(tenant_a.project, path)
