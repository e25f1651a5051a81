"""The customer page's privacy requests (issue #29): download the customer's data (the API's export document)
and erase it, each audited with the operator — the same services as `/customers/{id}/export` and `/erase`."""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from backoffice.services.customer_erase import customer_erase
from backoffice.services.customer_export import customer_export
from core.actors import Actor
from core.admin_actions import has_perm, reason_action
from customers.models import Customer

EXPORT_PERMISSION = "customers.export_customer_data"
ERASE_PERMISSION = "customers.erase_customer_data"


def customer_export_download(request: HttpRequest, customer: Customer) -> StreamingHttpResponse:
    """The export document as a file download (audited `customer.exported` with the operator)."""
    if not has_perm(request, EXPORT_PERMISSION):
        raise PermissionDenied
    if customer.erased_at is not None:
        raise Http404("This customer's personal data is erased.")
    chunks = customer_export(
        project=customer.project, external_id=customer.external_id, actor=Actor.user(request.user)
    )
    response = StreamingHttpResponse(chunks, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="customer-{customer.pk}.json"'
    return response


def _erase(customer: Customer, data: dict[str, Any], actor: Actor) -> str:
    erased = customer_erase(
        project=customer.project, external_id=customer.external_id, reason=data["reason"], actor=actor
    )
    return f"erased; the customer is now {erased.customer.external_id}"


def customer_erase_form(
    modeladmin: "admin.ModelAdmin[Customer]", request: HttpRequest, customers: QuerySet[Customer]
) -> HttpResponse | None:
    """The reason form, then the erasure of each customer (a refusal, such as a live subscription, is shown)."""
    if not has_perm(request, ERASE_PERMISSION):
        raise PermissionDenied
    return reason_action(
        modeladmin,
        request,
        customers.select_related("project").filter(erased_at__isnull=True),
        title="Erase personal data",
        perform=_erase,
    )


def customer_erase_page(
    modeladmin: "admin.ModelAdmin[Customer]", request: HttpRequest, customer: Customer
) -> HttpResponse:
    """The customer page's "Erase personal data": the reason form, then back to the (erased) customer."""
    if customer.erased_at is not None:
        modeladmin.message_user(request, "This customer's personal data is already erased.", messages.INFO)
        return redirect(reverse("admin:customers_customer_change", args=[customer.pk]))
    response = customer_erase_form(modeladmin, request, Customer.objects.filter(pk=customer.pk))
    return (
        response
        if response is not None
        else redirect(reverse("admin:customers_customer_change", args=[customer.pk]))
    )
