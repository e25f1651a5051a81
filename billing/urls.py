from django.urls import include, path

urlpatterns = [
    path("", include("billing.catalog_urls")),
    path("", include("billing.payment_urls")),
]
