"""The entitlement change feed (`entitlements.changes`, `GET /entitlements/changes`) on whichever cache the run
has (Redis with REDIS_URL, process memory without): positions in commit order, nothing before the commit, and a
start over (`resync`) whenever the feed cannot list what a reader missed — its keys lost, an entry expired, too many
changes, or a catalog change (`answers`) — never a silent gap."""

import pytest
from django.core.cache import cache

from core.actors import Actor
from entitlements import changes
from entitlements.services.grants import grant_create
from tests.entitlements.factories import FeatureFactory

pytestmark = pytest.mark.django_db

FEED = "/api/v1/entitlements/changes"


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()


def _poll(api, tenant, **params):
    query = "&".join(f"{name}={value}" for name, value in params.items())
    response = api.get(f"{FEED}?{query}" if query else FEED, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def _grant(tenant, feature, external_id: str) -> None:
    grant_create(
        project=tenant.project,
        external_id=external_id,
        feature=feature,
        actor=Actor.system("test"),
        reason="t",
    )


def test_changes_are_listed_after_their_commit_in_order(api, tenant_a, django_capture_on_commit_callbacks):
    feature = FeatureFactory(project=tenant_a.project, key="sso", type="boolean")
    start = _poll(api, tenant_a)
    with django_capture_on_commit_callbacks(execute=False) as pending:
        _grant(tenant_a, feature, "u1")
    assert (
        _poll(api, tenant_a, since=start["version"], feed=start["feed"])["customers"] == []
    )  # not committed
    for callback in pending:
        callback()
    with django_capture_on_commit_callbacks(execute=True):
        _grant(tenant_a, feature, "u2")
        _grant(tenant_a, feature, "u1")
    after = _poll(api, tenant_a, since=start["version"], feed=start["feed"])
    assert (after["customers"], after["version"], after["feed"], after["resync"]) == (
        ["u1", "u2", "u1"],
        start["version"] + 3,
        start["feed"],
        False,
    )
    assert after["answers"] == start["answers"]
    assert _poll(api, tenant_a, since=start["version"] + 2, feed=start["feed"])["customers"] == ["u1"]


def test_a_feed_that_lost_its_keys_or_entries_starts_over(api, tenant_a, django_capture_on_commit_callbacks):
    feature = FeatureFactory(project=tenant_a.project, key="sso", type="boolean")
    start = _poll(api, tenant_a)
    with django_capture_on_commit_callbacks(execute=True):
        _grant(tenant_a, feature, "u1")
        _grant(tenant_a, feature, "u2")
    project = tenant_a.project.pk
    cache.delete(f"ent:chg:{project}:{start['version'] + 1}")  # an entry expired
    gap = _poll(api, tenant_a, since=start["version"], feed=start["feed"])
    assert (gap["resync"], gap["customers"]) == (True, [])
    assert _poll(api, tenant_a, since=start["version"] + 1, feed=start["feed"])["customers"] == ["u2"]

    cache.delete(changes.feed_keys(project)[1])  # the position lost (Redis emptied, evicted)
    lost = _poll(api, tenant_a, since=gap["version"], feed=gap["feed"])
    assert (lost["resync"], lost["version"]) == (True, 0)
    assert lost["feed"] != gap["feed"]
    with django_capture_on_commit_callbacks(execute=True):
        _grant(tenant_a, feature, "u3")
    assert _poll(api, tenant_a, since=0, feed=lost["feed"])["customers"] == ["u3"]  # the new feed holds

    cache.delete(changes.feed_keys(project)[0])  # the id lost: a reader of the old one starts over
    assert _poll(api, tenant_a, since=1, feed=lost["feed"])["resync"] is True


def test_too_many_changes_start_over_and_a_catalog_change_moves_answers(
    api, tenant_a, django_capture_on_commit_callbacks
):
    start = _poll(api, tenant_a)
    many = {f"u{i}": f"ent:sv:test:{i}" for i in range(changes.MAX_CHANGES_PER_ANSWER)}
    changes._append(tenant_a.project.pk, many)
    full = _poll(api, tenant_a, since=start["version"], feed=start["feed"])
    assert (full["customers"], full["resync"]) == (list(many), False)
    changes._append(tenant_a.project.pk, {"one-more": "ent:sv:test:x"})
    assert _poll(api, tenant_a, since=start["version"], feed=start["feed"])["resync"] is True

    created = api.post(
        "/api/v1/features", {"key": "exports", "name": "Exports", "type": "metered"}, key=tenant_a.key
    )
    assert created.status_code == 201
    moved = _poll(api, tenant_a, since=full["version"] + 1, feed=full["feed"])
    assert moved["answers"] != start["answers"]  # a client drops every snapshot
    assert (moved["resync"], moved["customers"]) == (False, [])
