from core.urls import route
from costs.apis.cost_tables import CostTableDetailApi, CostTablesApi

urlpatterns = [
    *route("cost_tables", CostTablesApi.as_view(), "cost-tables"),
    *route("cost_tables/<str:table_id>", CostTableDetailApi.as_view(), "cost-table-detail"),
]
