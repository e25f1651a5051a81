from core.urls import route
from projects.apis import projects as apis

urlpatterns = [
    *route("projects", apis.ProjectListCreateApi.as_view(), "projects"),
    *route("projects/<str:project_id>", apis.ProjectDetailApi.as_view(), "project-detail"),
    *route(
        "projects/<str:project_id>/api_keys", apis.ProjectApiKeyListCreateApi.as_view(), "project-api-keys"
    ),
    *route(
        "projects/<str:project_id>/api_keys/<str:key_id>",
        apis.ProjectApiKeyRevokeApi.as_view(),
        "project-api-key",
    ),
    *route("project", apis.CurrentProjectApi.as_view(), "current-project"),
    *route("project/api_keys", apis.CurrentProjectApiKeyListCreateApi.as_view(), "current-project-api-keys"),
    *route(
        "project/api_keys/<str:key_id>",
        apis.CurrentProjectApiKeyRevokeApi.as_view(),
        "current-project-api-key",
    ),
]
