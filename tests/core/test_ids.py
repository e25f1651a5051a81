"""Public ids are prefixed and unguessable."""

from core.ids import new_id


def test_ids_have_a_prefix_and_enough_randomness():
    ids = {new_id("proj") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("proj_") and len(i) == 29 for i in ids)


def test_models_get_prefixed_ids(tenant_a):
    assert tenant_a.project.pk.startswith("proj_")
    assert tenant_a.api_key.pk.startswith("key_")


def test_batches_of_ids_have_the_same_shape_and_every_character_of_the_alphabet():
    from core.ids import _ALPHABET, _random_characters, new_ids

    ids = new_ids("uev", 1000)
    assert len(set(ids)) == 1000
    assert all(i.startswith("uev_") and len(i) == 28 and set(i[4:]) <= set(_ALPHABET) for i in ids)
    drawn = _random_characters(62 * 2000)
    assert len(drawn) == 62 * 2000
    counts = {character: drawn.count(character) for character in _ALPHABET}
    assert set(drawn) == set(_ALPHABET)
    # Uniform: each of the 62 characters about 2,000 times (a bias of one character in 62 would show ±12 %).
    assert all(1700 < count < 2300 for count in counts.values()), counts
