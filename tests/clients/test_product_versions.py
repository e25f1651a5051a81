"""Product versions through the Python client, on the live server: a change to a product's features publishes its
next version, listed with what each changed; a draft saved (once under its idempotency key), read, then published
as version 3 (a retry answers the product); a draft made stale by a version published since is refused with
`draft_stale`; a discarded draft is gone (`no_draft`)."""

import pytest
from tollgate_client import ConflictError, NotFoundError
from tollgate_client.pagination import Page
from tollgate_client.types import Product, ProductDraft, ProductVersion, VersionChange

from catalog.models import ProductVersion as ProductVersionRow

pytestmark = pytest.mark.django_db(transaction=True)

V1 = {"api_calls": 100, "export": True}
V2 = {"api_calls": 1000, "export": True, "ai_credits": 500}
V3 = {"api_calls": 300, "ai_credits": 200}
V2_TO_V3 = [
    {"feature": "ai_credits", "before": 500, "after": 200},
    {"feature": "api_calls", "before": 1000, "after": 300},
    {"feature": "export", "before": True, "after": None},
]


def _changes(changes: list[VersionChange]) -> list[dict[str, object]]:
    return [{"feature": c.feature, "before": c.before, "after": c.after} for c in changes]


@pytest.fixture
def versioned(tollgate) -> Product:
    """`team` at version 2 (`V2`), made at version 1 (`V1`)."""
    tollgate.features.create(key="api_calls", name="API calls", type="metered", unit="call")
    tollgate.features.create(key="export", name="Export", type="boolean")
    tollgate.features.create(key="ai_credits", name="AI credits", type="credits")
    made = tollgate.products.create(key="team", name="Team", features=V1)
    assert (made.version, made.features) == (1, V1)
    updated = tollgate.products.update("team", features=V2)
    assert (updated.version, updated.features) == (2, V2)
    return updated


def test_versions_are_listed_with_what_each_changed(tollgate, versioned):
    page = tollgate.products.versions("team")

    assert isinstance(page, Page)
    assert page.has_more is False
    assert all(isinstance(version, ProductVersion) for version in page.data)
    assert [(v.object, v.number, v.latest, v.features, v.note) for v in page.data] == [
        ("product_version", 1, False, V1, None),
        ("product_version", 2, True, V2, None),
    ]
    assert page.data[0].changes == []
    assert _changes(page.data[1].changes) == [
        {"feature": "ai_credits", "before": None, "after": 500},
        {"feature": "api_calls", "before": 100, "after": 1000},
    ]
    assert tollgate.products.versions(versioned.id).raw == page.raw  # by id as by key


def test_a_draft_saved_read_and_published_as_version_3(tollgate, versioned):
    with pytest.raises(NotFoundError) as none_yet:
        tollgate.products.draft("team")
    assert (none_yet.value.status, none_yet.value.code) == (404, "no_draft")

    saved = tollgate.products.draft_save("team", features=V3, note="cheaper tier", idempotency_key="draft-1")
    again = tollgate.products.draft_save("team", features=V3, note="cheaper tier", idempotency_key="draft-1")

    assert again.raw == saved.raw  # the first answer, replayed
    assert isinstance(saved, ProductDraft)
    assert (saved.object, saved.product, saved.based_on, saved.version, saved.stale, saved.note) == (
        "product_draft",
        versioned.id,
        2,
        3,
        False,
        "cheaper tier",
    )
    assert saved.features == V3
    assert _changes(saved.changes) == V2_TO_V3
    read = tollgate.products.draft("team")
    assert (read.based_on, read.version, read.stale, read.features) == (2, 3, False, V3)
    assert _changes(read.changes) == V2_TO_V3
    # Nothing changed until it is published.
    unchanged = tollgate.products.retrieve("team")
    assert (unchanged.version, unchanged.features) == (2, V2)

    published = tollgate.products.draft_publish("team", version=3)

    assert isinstance(published, Product)
    assert (published.id, published.version, published.features) == (versioned.id, 3, V3)
    retried = tollgate.products.draft_publish("team", version=3)  # went through already: the product
    assert (retried.version, retried.features) == (3, V3)
    assert ProductVersionRow.objects.filter(product_id=versioned.id).count() == 3
    versions = tollgate.products.versions("team").data
    assert [(v.number, v.latest) for v in versions] == [(1, False), (2, False), (3, True)]
    assert (versions[2].note, versions[2].features) == ("cheaper tier", V3)
    assert _changes(versions[2].changes) == V2_TO_V3
    with pytest.raises(NotFoundError) as gone:
        tollgate.products.draft("team")
    assert gone.value.code == "no_draft"


def test_a_stale_draft_is_refused_and_a_discarded_one_is_gone(tollgate, versioned):
    tollgate.products.draft_save("team", features=V3)
    assert tollgate.products.draft("team").note is None
    # Version 3 published directly, after the draft was made on version 2.
    assert tollgate.products.update("team", features={"api_calls": 10}).version == 3
    stale = tollgate.products.draft("team")
    assert (stale.based_on, stale.version, stale.stale) == (2, 3, True)

    with pytest.raises(ConflictError) as refused:
        tollgate.products.draft_publish("team")

    assert (refused.value.status, refused.value.code) == (409, "draft_stale")
    product = tollgate.products.retrieve("team")
    assert (product.version, product.features) == (3, {"api_calls": 10})

    assert tollgate.products.draft_discard("team") is None

    with pytest.raises(NotFoundError) as gone:
        tollgate.products.draft("team")
    assert (gone.value.status, gone.value.code) == (404, "no_draft")
    with pytest.raises(NotFoundError) as again:
        tollgate.products.draft_discard("team")
    assert again.value.code == "no_draft"
    assert tollgate.products.retrieve("team").version == 3


def test_the_account_cap_is_versioned_and_drafted(tollgate, versioned):
    cap = {"amount": 40000, "currency": "usd", "at_cap": "alert"}
    capped = tollgate.products.update("team", account_cap=cap)
    assert (capped.version, capped.account_cap.amount, capped.account_cap.at_cap) == (3, 40000, "alert")
    drafted = tollgate.products.draft_save("team", account_cap=None, note="no cap")
    assert (drafted.version, drafted.account_cap, drafted.features) == (4, None, V2)
    kept = tollgate.products.draft_save("team", features=V3)  # left out: the latest version's cap
    assert (kept.account_cap.amount, kept.account_cap.currency) == (40000, "usd")
    published = tollgate.products.draft_publish("team", version=4)
    assert (published.version, published.features, published.account_cap.amount) == (4, V3, 40000)

    versions = tollgate.products.versions("team").data
    assert [(v.number, v.account_cap and v.account_cap.amount, v.note) for v in versions] == [
        (1, None, None),
        (2, None, None),
        (3, 40000, "account cap changed"),
        (4, 40000, None),
    ]
