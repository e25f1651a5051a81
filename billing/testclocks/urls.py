"""Routes of the test clocks API (`apis`)."""

from billing.testclocks import apis
from core.urls import route

urlpatterns = [
    *route("test_clocks", apis.TestClockListCreateApi.as_view(), "test-clocks"),
    *route("test_clocks/<str:test_clock>", apis.TestClockDetailApi.as_view(), "test-clock-detail"),
    *route("test_clocks/<str:test_clock>/advance", apis.TestClockAdvanceApi.as_view(), "test-clock-advance"),
]
