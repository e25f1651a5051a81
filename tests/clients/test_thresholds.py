"""A customer's own usage thresholds through the typed client against a live server."""

import pytest
from tollgate_client import InvalidRequestError, NotFoundError
from tollgate_client.types import UsageThreshold

from events.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_threshold_created_listed_crossed_and_deleted(tollgate, plans):
    mine = tollgate.entitlements.thresholds.create(customer="user-1", feature="exports", quantity=2)
    assert isinstance(mine, UsageThreshold)
    assert (mine.customer, mine.feature, mine.percent, mine.quantity, mine.deleted) == (
        "user-1",
        "exports",
        None,
        2,
        False,
    )
    assert tollgate.entitlements.thresholds.list(customer="user-1").data == [mine]
    tollgate.entitlements.consume(id="c1", customer="user-1", feature="exports", quantity=2)
    reached = Event.objects.get(type="usage.threshold_reached", data__object__threshold_id=mine.id)
    assert (reached.data["object"]["units"], reached.data["object"]["used"]) == (2, 2)
    gone = tollgate.entitlements.thresholds.delete(mine.id)
    assert (gone.id, gone.deleted) == (mine.id, True)
    assert tollgate.entitlements.thresholds.list(customer="user-1").data == []
    with pytest.raises(NotFoundError):
        tollgate.entitlements.thresholds.delete(mine.id)
    with pytest.raises(InvalidRequestError) as refused:
        tollgate.entitlements.thresholds.create(customer="user-1", feature="sso", percent=50)
    assert refused.value.code == "feature_not_metered"
