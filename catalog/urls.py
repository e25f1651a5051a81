"""Routes of the catalog API (`apis`): features, products, prices; the public plans (`public_apis`)."""

from catalog.apis import catalog as apis
from catalog.apis import public as public_apis
from catalog.apis import versions as version_apis
from core.urls import route

urlpatterns = [
    *route("features", apis.FeatureListCreateApi.as_view(), "features"),
    *route("features/<str:feature>", apis.FeatureDetailApi.as_view(), "feature-detail"),
    *route("products", apis.ProductListCreateApi.as_view(), "products"),
    *route("products/<str:product>", apis.ProductDetailApi.as_view(), "product-detail"),
    *route(
        "products/<str:product>/versions", version_apis.ProductVersionListApi.as_view(), "product-versions"
    ),
    *route("products/<str:product>/draft", version_apis.ProductDraftApi.as_view(), "product-draft"),
    *route(
        "products/<str:product>/draft/publish",
        version_apis.ProductDraftPublishApi.as_view(),
        "product-draft-publish",
    ),
    *route("prices", apis.PriceListCreateApi.as_view(), "prices"),
    *route("prices/<str:price>", apis.PriceDetailApi.as_view(), "price-detail"),
    *route("public/<str:slug>/plans", public_apis.PublicPlansApi.as_view(), "public-plans"),
]
