"""Routes of customers and their test clocks."""

from core.urls import route
from customers.apis import customers, test_clocks

urlpatterns = [
    *route("customers", customers.CustomerListCreateApi.as_view(), "customers"),
    *route("customers/<str:customer_id>", customers.CustomerDetailApi.as_view(), "customer-detail"),
    *route("test_clocks", test_clocks.TestClockListCreateApi.as_view(), "test-clocks"),
    *route("test_clocks/<str:test_clock>", test_clocks.TestClockDetailApi.as_view(), "test-clock-detail"),
    *route(
        "test_clocks/<str:test_clock>/advance",
        test_clocks.TestClockAdvanceApi.as_view(),
        "test-clock-advance",
    ),
]
