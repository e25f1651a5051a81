"""Every back-office page speaks to people: model names and plurals in words, human column headers, and no
add or delete on what Stripe mirrors or money hangs on; catalog edits go through the catalog services."""

import re

import pytest
from django.contrib import admin
from django.contrib.admin.templatetags.admin_list import result_headers
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.core.exceptions import FieldDoesNotExist
from django.test import Client, RequestFactory

from billing.models import Customer, Invoice, Payment, Price, Product, Subscription
from core.models import AuditLogEntry
from entitlements.models import Feature, ProductFeature
from tests.billing.payment_factories import (
    CustomerFactory,
    InvoiceFactory,
    PaymentFactory,
    SubscriptionFactory,
)


def _root() -> tuple[User, Client]:
    user = User.objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(user)
    return user, client


def _bad_name(text: str, *, plural: bool = False) -> str | None:
    """Why `text` (a `plural` of a model's name, or else a header) is not a name for people, or None."""
    if "_" in text:
        return "an identifier"
    if "repr" in text.lower():
        return "an identifier"
    if re.search(r"\bid$", text) or text == "Id":
        return "an id spelt like a field name"
    if not plural:
        return None
    if re.search(r"[^aeiou]ys$", text):
        return "a bad plural (-ys)"
    if re.search(r"s{3}$|[^s]ss$", text) and not text.endswith("settings"):
        return "a bad plural (-ss)"
    return None


def _is_field(model, name):
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


def test_every_model_has_a_name_and_a_plural_in_words(db):
    from django.apps import apps

    problems = []
    for model in apps.get_models():
        if model._meta.app_label not in ("core", "projects", "billing", "entitlements", "webhooks"):
            continue
        singular, plural = str(model._meta.verbose_name), str(model._meta.verbose_name_plural)
        for text, is_plural in ((singular, False), (plural, True)):
            if why := _bad_name(text, plural=is_plural):
                problems.append(f"{model._meta.label}: {text!r} is {why}")
        if plural == singular and not plural.endswith("settings"):
            problems.append(f"{model._meta.label}: the plural {plural!r} is the singular")
    assert problems == []
    assert (
        str(AuditLogEntry._meta.verbose_name_plural),
        str(ProductFeature._meta.verbose_name_plural),
    ) == ("audit log entries", "product feature values")


def test_every_changelist_has_human_headers_and_plurals(tenant_a):
    user, client = _root()
    request = RequestFactory().get("/")
    request.user = user
    problems = []
    for model, model_admin in admin.site._registry.items():
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        response = client.get(url)
        assert response.status_code == 200, url
        changelist = model_admin.get_changelist_instance(request)
        headers = [h["text"] for h in result_headers(changelist)]
        for entry, header in zip(changelist.list_display, headers, strict=True):
            if entry == "action_checkbox":
                continue
            ours = model._meta.app_label != "auth"  # Django's own user and group pages name their fields
            if ours and isinstance(entry, str) and "_" in entry and _is_field(model, entry):
                problems.append(f"{url}: the column {entry!r} has no header written for people")
            if why := _bad_name(str(header)):
                problems.append(f"{url}: header {header!r} is {why}")
    assert "\n".join(problems) == ""

    index = client.get("/admin/").content.decode()
    for text in (
        "Audit log entries",
        "Credit ledger entries",
        "Deliveries",
        "Entitlement settings",
        "Product access durations",
        "Features",
        "Product feature values",
    ):
        assert f">{text}</a>" in index
    for bad in ("entrys", "settingss", "accesss", "Deliverys"):
        assert bad not in index


def test_audit_log_headers_read_as_words(tenant_a):
    AuditLogEntry.objects.create(
        project=tenant_a.project,
        actor_type="user",
        actor_repr="ops-anna",
        action="grant.created",
        target_type="grant",
        target_id="grant_1",
        reason="ticket 1",
    )
    html = _root()[1].get("/admin/core/auditlogentry/").content.decode()
    headers = re.findall(
        r'<th scope="col" class="[^"]*column-(\w+)[^"]*">.*?<a [^>]*>([^<]+)</a>', html, re.S
    )
    assert headers == [
        ("created_at", "When"),
        ("project", "Project"),
        ("actor_repr", "Actor"),
        ("action", "Action"),
        ("target_type", "Target"),
        ("target_id", "Target ID"),
        ("reason", "Reason"),
    ]
    assert "1 audit log entry" in html


@pytest.mark.parametrize(
    ("model", "factory"),
    [
        (Payment, lambda project: PaymentFactory(project=project)),
        (Invoice, lambda project: InvoiceFactory(project=project)),
        (Subscription, lambda project: SubscriptionFactory(project=project)),
    ],
)
def test_no_add_or_delete_of_what_stripe_mirrors(tenant_a, model, factory):
    row = factory(tenant_a.project)
    _, client = _root()
    base = f"/admin/billing/{model._meta.model_name}/"
    before = list(model.objects.values())
    assert client.get(f"{base}add/").status_code == 403
    assert client.post(f"{base}add/", {"project": tenant_a.project.pk}).status_code == 403
    assert client.get(f"{base}{quote(row.pk)}/delete/").status_code == 403
    assert client.post(f"{base}{quote(row.pk)}/delete/", {"post": "yes"}).status_code == 403
    listing = client.get(base).content.decode()
    assert 'value="delete_selected"' not in listing
    assert f'href="{base}add/"' not in listing
    # the bulk action is refused too
    response = client.post(base, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"})
    assert response.status_code in (200, 302)  # the changelist again: there is no such action here
    assert list(model.objects.values()) == before
    assert not AuditLogEntry.objects.exists()


@pytest.mark.parametrize("model", [Product, Price, Customer])
def test_no_add_of_catalog_rows_or_customers(tenant_a, catalog, model):
    count = model.objects.count()
    _, client = _root()
    url = f"/admin/billing/{model._meta.model_name}/add/"
    assert client.get(url).status_code == 403
    assert client.post(url, {"project": tenant_a.project.pk, "key": "x", "name": "X"}).status_code == 403
    assert model.objects.count() == count


def test_a_customer_with_a_live_subscription_cannot_be_deleted(tenant_a, catalog):
    customer = CustomerFactory(project=tenant_a.project)
    SubscriptionFactory(
        project=tenant_a.project, customer=customer, price=catalog.pro_monthly, status="active"
    )
    _, client = _root()
    url = f"/admin/billing/customer/{quote(customer.pk)}/delete/"
    assert client.get(url).status_code == 403
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Customer.objects.filter(pk=customer.pk).exists()
    page = client.get(f"/admin/billing/customer/{quote(customer.pk)}/change/").content.decode()
    assert 'class="deletelink"' not in page


def test_a_customer_without_money_can_still_be_deleted(tenant_a):
    customer = CustomerFactory(project=tenant_a.project)
    _, client = _root()
    response = client.post(f"/admin/billing/customer/{quote(customer.pk)}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Customer.objects.filter(pk=customer.pk).exists()


def test_a_product_edit_goes_through_the_catalog_service(tenant_a, catalog, stripe_sdk):
    _, client = _root()
    product = catalog.pro
    url = f"/admin/billing/product/{quote(product.pk)}/change/"
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {
            "name": "Professional plus",
            "description": "Everything, and support",
            "active": "on",
            "feature_values-TOTAL_FORMS": "0",
            "feature_values-INITIAL_FORMS": "0",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    product.refresh_from_db()
    assert (product.name, product.description, product.active) == (
        "Professional plus",
        "Everything, and support",
        True,
    )
    entry = AuditLogEntry.objects.get(action="product.updated")
    assert (entry.actor_repr, entry.target_id) == ("root", product.pk)
    assert entry.before["name"] == "Professional"
    assert entry.after["name"] == "Professional plus"
    at_stripe = stripe_sdk().v1.products.retrieve(product.stripe_product_id)
    assert (at_stripe.name, at_stripe.description) == ("Professional plus", "Everything, and support")


def test_product_key_and_stripe_id_cannot_be_changed_in_the_form(tenant_a, catalog):
    _, client = _root()
    product = catalog.pro
    client.post(
        f"/admin/billing/product/{quote(product.pk)}/change/",
        {
            "key": "hacked",
            "stripe_product_id": "prod_other",
            "name": "Professional",
            "active": "on",
            "feature_values-TOTAL_FORMS": "0",
            "feature_values-INITIAL_FORMS": "0",
        },
    )
    product.refresh_from_db()
    assert (product.key, product.stripe_product_id) == ("pro", catalog.pro.stripe_product_id)
    assert not AuditLogEntry.objects.filter(action="product.updated").exists()


def test_features_are_created_and_renamed_through_the_catalog_service(tenant_a):
    _, client = _root()
    response = client.post(
        "/admin/entitlements/feature/add/",
        {
            "project": tenant_a.project.pk,
            "key": "seats",
            "name": "Seats",
            "type": "allocation",
            "unit": "seat",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    feature = Feature.objects.get(project=tenant_a.project, key="seats")
    assert (feature.name, feature.type, feature.unit) == ("Seats", "allocation", "seat")
    response = client.post(
        f"/admin/entitlements/feature/{quote(feature.pk)}/change/",
        {"name": "Team seats", "type": "allocation", "unit": "seat"},
    )
    assert response.status_code == 302
    feature.refresh_from_db()
    assert feature.name == "Team seats"
    assert list(AuditLogEntry.objects.order_by("created_at").values_list("action", "actor_repr")) == [
        ("feature.created", "root"),
        ("feature.updated", "root"),
    ]
    assert client.get(f"/admin/entitlements/feature/{quote(feature.pk)}/delete/").status_code == 403


def test_a_used_features_type_cannot_change(tenant_a, catalog):
    _, client = _root()
    audited = AuditLogEntry.objects.count()
    feature = Feature.objects.create(project=tenant_a.project, key="sso", name="SSO", type="boolean")
    ProductFeature.objects.create(product=catalog.pro, feature=feature, value=True)
    response = client.post(
        f"/admin/entitlements/feature/{quote(feature.pk)}/change/",
        {"name": "SSO", "type": "static", "unit": ""},
    )
    assert response.status_code == 200
    assert "its type can no longer change" in response.content.decode()
    feature.refresh_from_db()
    assert feature.type == "boolean"
    assert AuditLogEntry.objects.count() == audited


def test_product_feature_values_change_through_the_product_service(tenant_a, catalog, stripe_sdk):
    _, client = _root()
    seats = Feature.objects.create(project=tenant_a.project, key="seats", name="Seats", type="allocation")
    sso = Feature.objects.create(project=tenant_a.project, key="sso", name="SSO", type="boolean")
    ProductFeature.objects.create(product=catalog.pro, feature=sso, value=True)

    response = client.post(
        "/admin/entitlements/productfeature/add/",
        {"product": catalog.pro.pk, "feature": seats.pk, "value": "5", "per_unit": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    values = {
        v.feature.key: (v.value, v.per_unit) for v in ProductFeature.objects.filter(product=catalog.pro)
    }
    assert values == {"seats": (5, True), "sso": (True, False)}
    entry = AuditLogEntry.objects.get(action="product.updated")
    assert entry.actor_repr == "root"

    value = ProductFeature.objects.get(product=catalog.pro, feature=seats)
    response = client.post(
        f"/admin/entitlements/productfeature/{quote(value.pk)}/change/", {"value": "nine", "per_unit": ""}
    )
    assert response.status_code == 200
    assert "Not JSON" in response.content.decode()

    response = client.post(f"/admin/entitlements/productfeature/{quote(value.pk)}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert list(
        ProductFeature.objects.filter(product=catalog.pro).values_list("feature__key", flat=True)
    ) == ["sso"]
    assert AuditLogEntry.objects.filter(action="product.updated").count() == 2


def test_a_boolean_feature_refuses_a_number(tenant_a, catalog):
    _, client = _root()
    audited = AuditLogEntry.objects.count()
    sso = Feature.objects.create(project=tenant_a.project, key="sso", name="SSO", type="boolean")
    response = client.post(
        "/admin/entitlements/productfeature/add/",
        {"product": catalog.pro.pk, "feature": sso.pk, "value": "3"},
    )
    assert response.status_code == 200
    assert "a boolean feature takes true or false" in response.content.decode()
    assert not ProductFeature.objects.exists()
    assert AuditLogEntry.objects.count() == audited
