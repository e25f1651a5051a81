"""The re-rating of a product's draft as CSV (#52 point 2), from the admin: one row per subscriber, what its last
closed periods were invoiced and what the draft would have billed them (`billing.rerating`), linked from the
product's versions page. Reads only."""

import csv
from typing import Any

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path

from billing.models import Subscription
from billing.rerating import draft_rerating
from catalog.models import ProductDraft
from core.admin_generics import ModelAdmin

CSV_COLUMNS = (
    "customer",
    "subscription",
    "version",
    "currency",
    "quantity",
    "periods",
    "today",
    "draft",
    "difference",
    "features_lost",
    "limits_lowered",
    "limits_below_use",
)


def _bounded(raw: Any, default: int | None, top: int) -> int | None:
    try:
        value = int(str(raw)) if raw not in (None, "") else default
    except ValueError:
        value = default
    return value if value is None or 1 <= value <= top else default


def rerating_csv(answer: dict[str, Any]) -> HttpResponse:
    """The re-rating's subscribers as CSV: money in minor units of each row's currency; the entitlements the
    draft takes (`features_lost`) or lowers (`limits_lowered`, `feature before→after`, and those under use)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="rerating-{answer["product"]}-v{answer["version"]}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for row in answer["rows"]:
        changes = row["entitlements"]
        lowered = [c for c in changes if c["change"] == "lowered"]
        writer.writerow(
            [
                row["customer"],
                row["subscription"],
                row["version"],
                row["currency"],
                row["quantity"],
                len(row["periods"]),
                row["today"],
                row["draft"],
                row["difference"],
                " ".join(c["feature"] for c in changes if c["change"] == "lost"),
                " ".join(
                    f"{c['feature']} {'unlimited' if c['before'] is None else c['before']}→{c['after']}"
                    for c in lowered
                ),
                " ".join(f"{c['feature']} (uses {c['used']})" for c in lowered if c["below_use"]),
            ]
        )
    return response


class DraftReratingPages(ModelAdmin[Subscription]):
    """Mixed into the subscriptions' admin: `rerating/<product id>/` answers the product's draft re-rated, as
    CSV (GET `periods`, default 3, and `version`, a cohort). Needs the view permission on subscriptions."""

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "rerating/<path:product_id>/",
                self.admin_site.admin_view(self.rerating_view),
                name="billing_subscription_rerating",
            ),
            *super().get_urls(),
        ]

    def rerating_view(self, request: HttpRequest, product_id: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        draft = ProductDraft.objects.select_related("product").filter(product_id=unquote(product_id)).first()
        if draft is None:
            raise Http404("The product has no draft.")
        answer = draft_rerating(
            draft=draft,
            periods=_bounded(request.GET.get("periods"), 3, 24) or 3,
            version=_bounded(request.GET.get("version"), None, 10**9),
        )
        return rerating_csv(answer)
