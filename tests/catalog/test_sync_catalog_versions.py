"""`manage.py sync_catalog` and product versions (#52 point 1): a file may state the version of each product's
feature values; a file that matches applies (publishing the next version when it changes them), one written against
another version is refused whole, nothing overwritten."""

import pytest
import yaml
from django.core.management import CommandError

from catalog.models import Product, ProductVersion
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
            "declares version 1, but 'pro' is at version 2; the file's feature values would "
            "publish version 3",
        ),
        (3, {"sso": False}, "declares version 3, but 'pro' is at version 2\\."),
        (
            2,
            {"sso": True},
            "declares version 2, but 'pro' is at version 2; the file's feature values would "
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
