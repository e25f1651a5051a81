"""Public ids are prefixed and unguessable."""

from core.ids import new_id


def test_ids_have_a_prefix_and_enough_randomness():
    ids = {new_id("proj") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("proj_") and len(i) == 29 for i in ids)


def test_models_get_prefixed_ids(tenant_a):
    assert tenant_a.project.pk.startswith("proj_")
    assert tenant_a.api_key.pk.startswith("key_")
