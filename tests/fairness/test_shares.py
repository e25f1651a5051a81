"""The shares' own mechanism (`core.fairness`), on Redis: what a hand-over offers, and to whom."""

import pytest

from core.fairness import share_hand_over, share_release, share_take

KIND = "test-shares"


@pytest.mark.django_db
def test_a_tenant_refused_while_a_hand_over_found_it_nothing_is_offered_the_next_place(shares):
    """A hand-over that finds a waiting tenant nothing to queue stops counting it waiting. If the tenant was
    refused again meanwhile (an event stored, or handed over to a customer's key, at that moment), that refusal
    must stand: otherwise no later hand-over offers it a place and its work waits for beat's sweep (the burst's
    tail left an event so)."""
    place = share_take(kind=KIND, tenant="t1", what="k1", cap=1, pool=1, lease_seconds=30)
    assert place is not None
    assert share_take(kind=KIND, tenant="t1", what="k2", cap=1, pool=1, lease_seconds=30) is None  # waits
    offered: list[str] = []

    def queue_waiting(tenant: str, alone: bool) -> bool:
        offered.append(tenant)
        if len(offered) == 1:  # while this hand-over found t1 nothing, t1's next work is refused
            assert share_take(kind=KIND, tenant="t1", what="k3", cap=1, pool=1, lease_seconds=30) is None
        return False  # nothing (more) waiting, as far as this hand-over saw

    share_hand_over(kind=KIND, queue_waiting=queue_waiting)
    share_release(kind=KIND, tenant="t1", token=place, what="k1")
    share_hand_over(kind=KIND, queue_waiting=queue_waiting)
    assert offered == ["t1", "t1"]
    share_hand_over(kind=KIND, queue_waiting=queue_waiting)  # found nothing, and nothing refused since
    assert offered == ["t1", "t1"]
