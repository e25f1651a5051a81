from django.urls import include, path

urlpatterns = [
    path("", include("billing.catalog.urls")),
    path("", include("billing.payment_urls")),
]
