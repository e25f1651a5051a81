"""dj-stripe's webhook view at `/stripe/webhook/<uuid>/`, as its documentation wires it."""

from django.urls import include, path

urlpatterns = [path("stripe/", include("djstripe.urls", namespace="djstripe"))]
