"""Product and price routes (prices cannot be deleted through Stripe's API, so there is no DELETE)."""

from stripe_emulator.core.routing import Route
from stripe_emulator.products import responses

ROUTES = [
    Route("POST", "/v1/products", responses.product_create),
    Route("GET", "/v1/products", responses.product_list),
    Route("GET", "/v1/products/{id}", responses.product_retrieve),
    Route("POST", "/v1/products/{id}", responses.product_update),
    Route("DELETE", "/v1/products/{id}", responses.product_delete),
    Route("GET", "/v1/products/{product}/features", responses.product_feature_list),
    Route("POST", "/v1/prices", responses.price_create),
    Route("GET", "/v1/prices", responses.price_list),
    Route("GET", "/v1/prices/{id}", responses.price_retrieve),
    Route("POST", "/v1/prices/{id}", responses.price_update),
]
