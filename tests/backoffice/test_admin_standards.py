"""Every back-office page speaks to people: model names and plurals in words, human column headers, and no
add or delete on what Stripe mirrors or money hangs on; catalog edits go through the catalog services."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from django.contrib import admin
from django.contrib.admin.templatetags.admin_list import result_headers
from django.contrib.admin.utils import flatten_fieldsets, label_for_field, quote, unquote
from django.contrib.auth.models import User
from django.core.exceptions import FieldDoesNotExist
from django.forms.utils import pretty_name
from django.test import Client, RequestFactory
from django.utils import timezone
from django.utils.text import capfirst

from billing.models import CreditNote, Invoice, Payment, Refund, Subscription
from catalog.models import Feature, Price, Product, ProductFeature
from config.settings.base import TOLLGATE_APPS
from core.models import AuditLogEntry
from customers.models import Customer
from customers.services.customers import customer_ensure_stripe
from projects.keys import PLATFORM_KEY_PREFIX, PROJECT_KEY_PREFIX
from projects.models import ApiKey, Project
from tests.billing.factories import CreditNoteFactory
from tests.billing.payment_factories import (
    CustomerFactory,
    InvoiceFactory,
    PaymentFactory,
    SubscriptionFactory,
)
from tests.projects.factories import ProjectFactory
from webhooks.models import StripeEvent


def _root() -> tuple[User, Client]:
    user = User.objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(user)
    return user, client


def _bad_name(text: str, *, plural: bool = False) -> str | None:
    """Why `text` (a `plural` of a model's name, or else a header or label) is not a name for people, or None."""
    if "_" in text:
        return "an identifier"
    if "repr" in text.lower():
        return "an identifier"
    if re.search(r"\bid$", text) or text == "Id":
        return "an id spelt like a field name"
    if re.search(r"\b(url|pdf)$", text) or text in ("Url", "Pdf"):
        return "an abbreviation spelt like a field name"
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
        if model._meta.app_label not in TOLLGATE_APPS:
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
        project_id=tenant_a.project.pk,
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
        (CreditNote, lambda project: CreditNoteFactory(project=project)),
    ],
)
def test_no_add_or_delete_of_what_stripe_mirrors(tenant_a, model, factory):
    row = factory(tenant_a.project)
    _, client = _root()
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
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
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/add/"
    assert client.get(url).status_code == 403
    assert client.post(url, {"project": tenant_a.project.pk, "key": "x", "name": "X"}).status_code == 403
    assert model.objects.count() == count


def test_a_customer_with_a_live_subscription_cannot_be_deleted(tenant_a, catalog):
    customer = CustomerFactory(project=tenant_a.project)
    SubscriptionFactory(
        project=tenant_a.project, customer=customer, price=catalog.pro_monthly, status="active"
    )
    _, client = _root()
    url = f"/admin/customers/customer/{quote(customer.pk)}/delete/"
    assert client.get(url).status_code == 403
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Customer.objects.filter(pk=customer.pk).exists()
    page = client.get(f"/admin/customers/customer/{quote(customer.pk)}/change/").content.decode()
    assert 'class="deletelink"' not in page


def test_a_customer_without_money_can_still_be_deleted(tenant_a):
    customer = CustomerFactory(project=tenant_a.project)
    _, client = _root()
    response = client.post(f"/admin/customers/customer/{quote(customer.pk)}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Customer.objects.filter(pk=customer.pk).exists()


def test_a_product_edit_goes_through_the_catalog_service(tenant_a, catalog, stripe_sdk):
    _, client = _root()
    product = catalog.pro
    url = f"/admin/catalog/product/{quote(product.pk)}/change/"
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
        f"/admin/catalog/product/{quote(product.pk)}/change/",
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
        "/admin/catalog/feature/add/",
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
        f"/admin/catalog/feature/{quote(feature.pk)}/change/",
        {"name": "Team seats", "type": "allocation", "unit": "seat"},
    )
    assert response.status_code == 302
    feature.refresh_from_db()
    assert feature.name == "Team seats"
    assert list(AuditLogEntry.objects.order_by("created_at").values_list("action", "actor_repr")) == [
        ("feature.created", "root"),
        ("feature.updated", "root"),
    ]
    assert client.get(f"/admin/catalog/feature/{quote(feature.pk)}/delete/").status_code == 403


def test_a_used_features_type_cannot_change(tenant_a, catalog):
    _, client = _root()
    audited = AuditLogEntry.objects.count()
    feature = Feature.objects.create(project=tenant_a.project, key="sso", name="SSO", type="boolean")
    ProductFeature.objects.create(product=catalog.pro, feature=feature, value=True)
    response = client.post(
        f"/admin/catalog/feature/{quote(feature.pk)}/change/",
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
        "/admin/catalog/productfeature/add/",
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
        f"/admin/catalog/productfeature/{quote(value.pk)}/change/", {"value": "nine", "per_unit": ""}
    )
    assert response.status_code == 200
    assert "Not JSON" in response.content.decode()

    response = client.post(f"/admin/catalog/productfeature/{quote(value.pk)}/delete/", {"post": "yes"})
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
        "/admin/catalog/productfeature/add/",
        {"product": catalog.pro.pk, "feature": sso.pk, "value": "3"},
    )
    assert response.status_code == 200
    assert "a boolean feature takes true or false" in response.content.decode()
    assert not ProductFeature.objects.exists()
    assert AuditLogEntry.objects.count() == audited


def _detail_labels(model_admin, request, obj) -> list[tuple[str, str]]:
    """`(field, label)` of every row of the detail page of `obj` and every column of its inlines, each label as
    Django renders it (a form field's label, else `label_for_field`: the model field's verbose name, or a
    display function's description)."""
    readonly = set(model_admin.get_readonly_fields(request, obj))
    form = model_admin.get_form(request, obj, fields=None)
    labels = []
    for name in flatten_fieldsets(model_admin.get_fieldsets(request, obj)):
        if isinstance(name, str) and name in form.base_fields and name not in readonly:
            label = form.base_fields[name].label or pretty_name(name)
        else:
            label = label_for_field(name, model_admin.model, model_admin, form=form)
        labels.append((getattr(name, "__name__", name), str(label)))
    for inline in model_admin.get_inline_instances(request, obj):
        for name in flatten_fieldsets(inline.get_fieldsets(request, obj)):
            if name == inline.fk_name or (
                inline.fk_name is None and name in ("customer", "cart", "run", "delivery")
            ):
                continue  # the inline's link to the page's object is not shown
            label = label_for_field(name, inline.model, inline)
            labels.append((f"{inline.model._meta.model_name}.{getattr(name, '__name__', name)}", str(label)))
    return labels


def test_every_detail_page_labels_its_fields_in_words(db):
    """No label reads like code ("Actor repr", "Target id", "Checkout url", "Invoice pdf") or is a field name
    with its underscores replaced (nobody wrote it): every field shown on a detail page has a label in words."""
    request = RequestFactory().get("/")
    request.user = User(is_superuser=True, is_staff=True, is_active=True)
    problems = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label == "auth":
            continue  # Django's own user and group pages
        for name, label in _detail_labels(model_admin, request, model()):
            field = name.rpartition(".")[2]
            if why := _bad_name(label):
                problems.append(f"{model._meta.label} {name}: {label!r} is {why}")
            elif (
                "_" in field
                and _is_own_field(_model_of(model_admin, name), field)
                and label == capfirst(field.replace("_", " "))
            ):
                problems.append(f"{model._meta.label} {name}: {label!r} is the field name, not a label")
    assert "\n".join(problems) == ""


def test_detail_pages_show_the_labels_people_read(tenant_a, catalog):
    entry = AuditLogEntry.objects.create(
        project_id=tenant_a.project.pk,
        actor_type="user",
        actor_id="7",
        actor_repr="ops-anna",
        action="grant.created",
        target_type="entitlements.grant",
        target_id="grant_1",
        target_repr="grant_1",
        reason="ticket 1",
        request_id="req_1",
    )
    customer = CustomerFactory(project=tenant_a.project, stripe_customer_id="cus_1")
    payment = PaymentFactory(
        project=tenant_a.project, customer=customer, checkout_url="https://pay.example/1"
    )
    invoice = InvoiceFactory(
        project=tenant_a.project,
        customer=customer,
        hosted_invoice_url="https://pay.example/in_1",
        invoice_pdf="https://pay.example/in_1/pdf",
    )
    _, client = _root()

    def labels(url: str) -> list[str]:
        html = client.get(url).content.decode()
        return [unescape(label) for label in re.findall(r"<label(?: [^>]*)?>([^<]+):</label>", html)]

    audit = labels(f"/admin/core/auditlogentry/{quote(entry.pk)}/change/")
    assert audit == [
        "ID",
        "When",
        "Project",
        "Kind of actor",
        "Actor ID",
        "Actor",
        "Action",
        "Target",
        "Target ID",
        "Target name",
        "Reason",
        "Before",
        "After",
        "Request ID",
    ]
    shown = {
        *labels(f"/admin/customers/customer/{quote(customer.pk)}/change/"),
        *labels(f"/admin/billing/payment/{quote(payment.pk)}/change/"),
        *labels(f"/admin/billing/invoice/{quote(invoice.pk)}/change/"),
    }
    assert {
        "ID",
        "Tenant's user ID",
        "Stripe customer",
        "Checkout link",
        "Invoice page",
        "Invoice PDF",
    } <= shown
    seen_in_the_audit = {
        "Actor repr",
        "Target id",
        "Request id",
        "Id",
        "External id",
        "Stripe customer id",
        "Checkout url",
        "Hosted invoice url",
        "Invoice pdf",
    }
    assert shown.isdisjoint(seen_in_the_audit)


def _is_own_field(model, name: str) -> bool:
    """Whether `name` is a column of `model` (not a display function, nor a relation's other end)."""
    return _is_field(model, name) and bool(getattr(model._meta.get_field(name), "concrete", False))


def _model_of(model_admin, name: str):
    """The model whose field `name` ("payment.amount" for an inline's column) is."""
    if "." not in name:
        return model_admin.model
    inline = name.partition(".")[0]
    return next(i.model for i in model_admin.inlines if i.model._meta.model_name == inline)


def _view_only_admins():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label != "auth" and not model_admin.has_change_permission(_superuser_request())
    ]


def _superuser_request():
    request = RequestFactory().get("/")
    request.user = User(is_superuser=True, is_staff=True, is_active=True)
    return request


def test_read_only_pages_are_views_without_a_save_button(tenant_a, catalog):
    """What nobody edits in the admin (Stripe's mirrors, what only services write) opens as "View …", with no
    Save button, and a forged save changes nothing."""
    viewed = {model._meta.model_name for model, _ in _view_only_admins()}
    assert viewed >= {
        "payment",
        "invoice",
        "subscription",
        "price",
        "refund",
        "checkoutsession",
        "cart",
        "reconciliationrun",
        "drift",
        "auditlogentry",
        "grant",
        "revocation",
        "purchase",
        "usageevent",
        "creditlot",
        "creditledgerentry",
        "productaccess",
        "stripeevent",
        "stripewebhookendpoint",
        "delivery",
        "event",
        "apikey",
        "platformkey",
    }
    payment = PaymentFactory(project=tenant_a.project, amount=4900, reference="order-1")
    _, client = _root()
    url = f"/admin/billing/payment/{quote(payment.pk)}/change/"
    html = client.get(url).content.decode()
    assert "<h1>View payment</h1>" in html
    assert "Change payment" not in html
    assert 'name="_save"' not in html
    assert 'name="_continue"' not in html
    before, audited = list(Payment.objects.values()), AuditLogEntry.objects.count()
    response = client.post(url, {"reference": "forged", "amount": "1", "_save": "Save"})
    assert response.status_code == 403
    assert list(Payment.objects.values()) == before
    assert AuditLogEntry.objects.count() == audited
    listing = client.get("/admin/billing/payment/").content.decode()
    assert "Select payment to view" in listing


def test_the_customer_list_offers_no_bulk_delete(tenant_a, catalog):
    paying = CustomerFactory(project=tenant_a.project)
    PaymentFactory(project=tenant_a.project, customer=paying)
    _, client = _root()
    listing = client.get("/admin/customers/customer/").content.decode()
    assert 'value="delete_selected"' not in listing
    response = client.post(
        "/admin/customers/customer/",
        {"action": "delete_selected", "_selected_action": [paying.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)  # the list again: there is no such action
    assert Customer.objects.filter(pk=paying.pk).exists()
    # A customer money hangs on (a payment, not only a live subscription) has no delete link, and no delete page.
    page = client.get(f"/admin/customers/customer/{quote(paying.pk)}/change/").content.decode()
    assert 'class="deletelink"' not in page
    assert (
        client.post(f"/admin/customers/customer/{quote(paying.pk)}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert Customer.objects.filter(pk=paying.pk).exists()


def test_a_customer_edit_goes_through_the_upsert_with_an_audit_row(
    tenant_a, stripe_sdk, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(
        project=tenant_a.project, email="old@example.com", name="Ada", metadata={"plan": "gold", "team": "x"}
    )
    stripe_id = customer_ensure_stripe(customer=customer)
    _, client = _root()
    url = f"/admin/customers/customer/{quote(customer.pk)}/change/"
    form = client.get(url).content.decode()
    assert 'name="email"' in form
    assert 'name="external_id"' not in form
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url,
            {
                **_inline_forms(form),
                "email": "ada@example.com",
                "name": "Ada Lovelace",
                "metadata": '{"plan": "platinum"}',
                "_save": "Save",
            },
        )
    assert response.status_code == 302, response.content.decode()[:3000]
    customer.refresh_from_db()
    assert (customer.email, customer.name, customer.metadata) == (
        "ada@example.com",
        "Ada Lovelace",
        {"plan": "platinum"},
    )
    entry = AuditLogEntry.objects.get(action="customer.updated")
    assert (entry.actor_type, entry.actor_repr, entry.target_id, entry.project_id) == (
        "user",
        "root",
        customer.pk,
        tenant_a.project.pk,
    )
    assert entry.before == {
        "email": "old@example.com",
        "name": "Ada",
        "metadata": {"plan": "gold", "team": "x"},
    }
    assert entry.after == {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "metadata": {"plan": "platinum"},
    }
    at_stripe = stripe_sdk().v1.customers.retrieve(stripe_id)
    assert (at_stripe.email, at_stripe.name) == ("ada@example.com", "Ada Lovelace")


def test_a_customer_edit_refused_by_the_form_changes_nothing(tenant_a, stripe_sdk):
    customer = CustomerFactory(project=tenant_a.project, email="old@example.com", name="Ada")
    stripe_id = customer_ensure_stripe(customer=customer)
    _, client = _root()
    url = f"/admin/customers/customer/{quote(customer.pk)}/change/"
    form = client.get(url).content.decode()
    response = client.post(
        url, {**_inline_forms(form), "email": "not an address", "name": "Eve", "metadata": "{}"}
    )
    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
    customer.refresh_from_db()
    assert (customer.email, customer.name) == ("old@example.com", "Ada")
    assert not AuditLogEntry.objects.exists()
    assert stripe_sdk().v1.customers.retrieve(stripe_id).email == "old@example.com"


def _inline_forms(form_html: str) -> dict[str, str]:
    """What a browser posts for a change page's read-only inlines: their hidden inputs (management forms, ids)."""
    hidden = re.findall(r'<input type="hidden" name="([\w-]+-[\w-]+)" (?:value="([^"]*)" )?id=', form_html)
    return {name: unescape(value) for name, value in hidden}


def test_a_project_is_created_and_changed_through_the_project_services(db):
    _, client = _root()
    add = client.get("/admin/projects/project/add/").content.decode()
    response = client.post(
        "/admin/projects/project/add/",
        {
            **_inline_forms(add),
            "slug": "gamma",
            "name": "Gamma",
            "default_currency": "EUR",
            "allowed_redirect_hosts": '["app.gamma.example"]',
            "payment_ttl_seconds": "3600",
            "default_flow": "checkout",
            "default_product": "",
            "stripe_publishable_key": "",
            "_save": "Save",
        },
        follow=True,
    )
    assert response.status_code == 200
    project = Project.objects.get(slug="gamma")
    assert (project.default_currency, project.allowed_redirect_hosts, project.payment_ttl_seconds) == (
        "eur",
        ["app.gamma.example"],
        3600,
    )
    key = ApiKey.objects.get(project=project)
    shown = [str(message) for message in response.context["messages"]]
    assert any(key.prefix in message and "shown once" in message for message in shown), shown
    assert list(AuditLogEntry.objects.order_by("created_at").values_list("action", "actor_repr")) == [
        ("project.created", "root"),
        ("api_key.created", "root"),
    ]

    url = f"/admin/projects/project/{quote(project.pk)}/change/"
    change = client.get(url).content.decode()
    assert 'name="slug"' not in change  # a slug never changes
    response = client.post(
        url,
        {
            **_inline_forms(change),
            "name": "Gamma (EU)",
            "default_currency": "eur",
            "allowed_redirect_hosts": '["app.gamma.example", "localhost:8000"]',
            "payment_ttl_seconds": "3600",
            "default_flow": "checkout",
            "default_product": "",
            "stripe_publishable_key": "",
            "refund_late_payments": "on",
            "proration_upgrade": "now_prorate",
            "proration_downgrade": "period_end",
            "proration_interval_change": "now_prorate",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    entry = AuditLogEntry.objects.get(action="project.updated")
    assert entry.actor_repr == "root"
    changed = {k for k in entry.after if entry.after[k] != entry.before[k]}
    assert changed == {"name", "allowed_redirect_hosts", "refund_late_payments", "proration_downgrade"}
    assert (entry.before["proration_downgrade"], entry.after["proration_downgrade"]) == (
        "now_prorate",
        "period_end",
    )
    assert (entry.before["name"], entry.after["name"]) == ("Gamma", "Gamma (EU)")
    assert entry.after["allowed_redirect_hosts"] == ["app.gamma.example", "localhost:8000"]


def test_a_project_form_refuses_what_the_api_refuses(db):
    project = ProjectFactory(slug="delta", name="Delta", allowed_redirect_hosts=["app.delta.example"])
    _, client = _root()
    url = f"/admin/projects/project/{quote(project.pk)}/change/"
    change = client.get(url).content.decode()
    response = client.post(
        url,
        {
            **_inline_forms(change),
            "name": "Delta",
            "default_currency": "us$",
            "allowed_redirect_hosts": '["https://app.delta.example/path"]',
            "payment_ttl_seconds": "3600",
            "default_flow": "checkout",
            "default_product": "",
            "stripe_publishable_key": "",
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Must be a three-letter ISO currency code." in html
    assert "&#x27;https://app.delta.example/path&#x27;: Must be a host name such as app.example.com" in html
    project.refresh_from_db()
    assert (project.default_currency, project.allowed_redirect_hosts) == ("usd", ["app.delta.example"])
    assert not AuditLogEntry.objects.exists()


def test_status_filters_name_statuses_as_the_badges_do(tenant_a, catalog):
    """An invoice's status has no choices (it is Stripe's word): its filter said "paid" next to a "Paid" badge."""
    InvoiceFactory(project=tenant_a.project, status="paid")
    InvoiceFactory(project=tenant_a.project, status="uncollectible")
    PaymentFactory(project=tenant_a.project, status="requires_payment_method")
    SubscriptionFactory(project=tenant_a.project, price=catalog.pro_monthly, status="past_due")
    _, client = _root()
    for url in ("/admin/billing/invoice/", "/admin/billing/payment/", "/admin/billing/subscription/"):
        html = client.get(url).content.decode()
        badges = set(re.findall(r'<span class="tg-status"[^>]*>([^<]+)</span>', html))
        filters = re.search(r'<details data-filter-title="status".*?</details>', html, re.S)
        assert filters is not None, url
        offered = set(re.findall(r"<a href=\"[^\"]*\">([^<]+)</a>", filters.group(0)))
        assert badges, url
        assert badges <= offered, (url, badges, offered)
    invoices = client.get("/admin/billing/invoice/").content.decode()
    status_filter = re.search(r'<details data-filter-title="status".*?</details>', invoices, re.S).group(0)
    # Stripe's five statuses of an invoice, read from the code rather than from every row of the table.
    assert re.findall(r"<a href=\"[^\"]*\">([^<]+)</a>", status_filter) == [
        "All",
        "Draft",
        "Open",
        "Paid",
        "Uncollectible",
        "Void",
    ]


# --- lists of what happens read newest first ----------------------------------------------------------------

# Lists of configuration, in their own order (a key, a slug, a name); every other list is of things that happen.
_NOT_A_HISTORY = {
    "auth.User",
    "auth.Group",
    "projects.Project",
    "catalog.Product",
    "catalog.Price",
    "catalog.Feature",
    "catalog.ProductFeature",
    "entitlements.EntitlementSettings",
    "catalog.ProductAccess",
    "webhooks.StripeWebhookEndpoint",
}


def _stripe_event(project, stripe_created: int) -> StripeEvent:
    return StripeEvent.objects.create(
        account="platform",
        project=project,
        stripe_event_id=f"evt_{stripe_created}",
        type="invoice.paid",
        stripe_created=stripe_created,
        payload={},
    )


def _refund(project) -> Refund:
    payment = PaymentFactory(project=project, status="succeeded")
    return Refund.objects.create(project=project, payment=payment, amount=100, currency="usd")


_HISTORIES = {
    Payment: lambda project: PaymentFactory(project=project),
    Invoice: lambda project: InvoiceFactory(project=project),
    CreditNote: lambda project: CreditNoteFactory(project=project),
    Customer: lambda project: CustomerFactory(project=project),
    Subscription: lambda project: SubscriptionFactory(project=project),
    Refund: _refund,
}


def _listed_ids(client: Client, model) -> list[str]:
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    html = client.get(base).content.decode()
    return [unquote(pk) for pk in re.findall(rf'<a href="{base}([^"/]+)/change/', html)]


@pytest.mark.parametrize("model", list(_HISTORIES), ids=lambda model: model.__name__)
def test_the_money_lists_show_the_newest_first(tenant_a, model):
    # Ids sort the opposite way of time (Django's default order, the primary key descending, would show the
    # oldest first here; with random ids it shows them in no order at all).
    now = timezone.now()
    rows = []
    for age, suffix in ((3, "c"), (2, "b"), (1, "a")):
        row = _HISTORIES[model](tenant_a.project)
        sortable = f"{row.pk.split('_')[0]}_{suffix}"  # pay_c, pay_b, pay_a
        model.objects.filter(pk=row.pk).update(id=sortable, created_at=now - timedelta(days=age))
        rows.append(sortable)
    _, client = _root()
    assert [pk for pk in _listed_ids(client, model) if pk in rows] == rows[::-1]


def test_stripe_events_received_together_list_stripes_newest_first(tenant_a):
    older, newer = (
        _stripe_event(tenant_a.project, 1_790_000_000),
        _stripe_event(tenant_a.project, 1_790_000_060),
    )
    received = timezone.now()
    StripeEvent.objects.filter(pk=older.pk).update(id="sevt_b", received_at=received)
    StripeEvent.objects.filter(pk=newer.pk).update(id="sevt_a", received_at=received)
    _, client = _root()
    assert _listed_ids(client, StripeEvent) == ["sevt_a", "sevt_b"]


def test_every_list_of_what_happens_is_newest_first(db):
    user, _ = _root()
    request = RequestFactory().get("/")
    request.user = user
    problems = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.label in _NOT_A_HISTORY:
            continue
        changelist = model_admin.get_changelist_instance(request)
        first = changelist.get_ordering(request, changelist.root_queryset)[0]
        if not (isinstance(first, str) and first.startswith("-") and first.endswith("_at")):
            problems.append(f"{model._meta.label}: ordered by {first!r} first")
    assert problems == []


# --- labels and moments, never raw values -------------------------------------------------------------------

# A raw enum value: lowercase words joined by underscores ("past_due", "subscription_create"); dotted names are
# Stripe's and Tollgate's event types ("invoice.paid"), which operators search for as written.
_RAW_ENUM = re.compile(r"(?<![\w./:#@-])[a-z]+(?:_[a-z]+)+(?![\w./@-])")
_KEY_PREFIXES = (PROJECT_KEY_PREFIX, PLATFORM_KEY_PREFIX)  # a key's shown prefix: random letters, not an enum
_UNIX_TIME = re.compile(r"(?<![\w.-])1\d{9}(?![\w.-])")
_CELL = re.compile(
    r'<(?:td|th)[^>]*class="[^"]*field-[^"]*"[^>]*>(.*?)</(?:td|th)>|<div class="readonly">(.*?)</div>',
    re.DOTALL,
)


def _cells(html: str) -> list[str]:
    """The text of every list cell and every read-only value of a page."""
    return [unescape(re.sub(r"<[^>]+>", " ", a or b)).strip() for a, b in _CELL.findall(html)]


def _a_paid_subscription_with_a_refund_and_a_grant(api, tenant, stripe_emulator, stripe_webhooks) -> None:
    created = api.post(
        "/api/v1/checkout/subscription",
        {
            "customer": "user-1",
            "price": "pro-monthly",
            "success_url": "https://app.example.com/ok",
            "cancel_url": "https://app.example.com/ok",
        },
        key=tenant.key,
    ).json()
    stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{created['stripe_session_id']}/complete",
        query="",
        body=b"card=4242424242424242",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    stripe_webhooks.deliver()
    refund = api.post(f"/api/v1/payments/{created['payment']}/refund", {"amount": 1000}, key=tenant.key)
    assert refund.status_code == 200, refund.json()
    stripe_webhooks.deliver()
    Feature.objects.create(project=tenant.project, key="reports", name="Reports", type=Feature.Type.BOOLEAN)
    grant = api.post(
        "/api/v1/entitlements/grants",
        {"customer": "user-1", "feature": "reports", "reason": "goodwill"},
        key=tenant.key,
    )
    assert grant.status_code == 201, grant.json()


def test_no_page_shows_a_raw_enum_value_or_a_unix_time(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    """Every list and every detail page (of up to three rows per list) after a paid subscription, a partial refund
    and a grant: each status and type reads as its label, each moment as a moment ("2026-11-23 16:02:42Z"), and
    Stripe's payloads show their times so too."""
    _a_paid_subscription_with_a_refund_and_a_grant(api, tenant_a, stripe_emulator, stripe_webhooks)
    # A key's shown prefix is drawn at random; CI once drew one of letters only, which reads like an enum value.
    ApiKey.objects.filter(pk=tenant_a.api_key.pk).update(prefix="tg_sk_zkaswb")
    keys = set(Feature.objects.values_list("key", flat=True))  # a tenant's own names, spelt as chosen
    _, client = _root()
    problems = []
    seen = set()
    for model in admin.site._registry:
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        pages = {base: client.get(base).content.decode()}
        for pk in model.objects.values_list("pk", flat=True)[:3]:
            url = f"{base}{quote(pk)}/change/"
            pages[url] = client.get(url).content.decode()
        for url, html in pages.items():
            for cell in _cells(html):
                if cell.startswith(("{", "[")):  # JSON as the API sends it: its keys are field names
                    enums: set[str] = set()
                else:
                    enums = {e for e in _RAW_ENUM.findall(cell) if not e.startswith(_KEY_PREFIXES)} - keys
                times = _UNIX_TIME.findall(cell)
                if enums or times:
                    problems.append(f"{url}: {sorted(enums)} {times} in {cell[:80]!r}")
            seen.add(model._meta.label)
    assert "\n".join(problems) == ""
    # the pages that had them
    assert {"billing.Invoice", "billing.Subscription", "webhooks.StripeEvent"} <= seen
    assert StripeEvent.objects.exists()


def test_stripe_times_read_as_moments(tenant_a):
    event = _stripe_event(tenant_a.project, 1_795_507_514)
    StripeEvent.objects.filter(pk=event.pk).update(
        payload={
            "created": 1_795_507_514,
            "data": {"object": {"current_period_end": 1_798_185_914, "amount": 4900}},
        }
    )
    invoice = InvoiceFactory(
        project=tenant_a.project, billing_reason="subscription_cycle", stripe_event_created=1
    )
    Invoice.objects.filter(pk=invoice.pk).update(stripe_event_created=1_795_507_514)
    _, client = _root()
    page = client.get(f"/admin/webhooks/stripeevent/{quote(event.pk)}/change/").content.decode()
    assert "<label>Created at Stripe:</label>" in page
    assert '<div class="readonly">2026-11-24 08:05:14Z</div>' in page
    assert "&quot;created&quot;: &quot;2026-11-24 08:05:14Z&quot;" in page
    assert "&quot;current_period_end&quot;: &quot;2026-12-25 08:05:14Z&quot;" in page
    assert "&quot;amount&quot;: 4900" in page
    cells = _cells(client.get(f"/admin/billing/invoice/{quote(invoice.pk)}/change/").content.decode())
    assert {"Renewal", "Paid", "2026-11-24 08:05:14Z"} <= set(cells)


def test_every_moment_reads_the_same_way(tenant_a):
    """Django's "Nov. 24, 2026, 8:05 a.m." hides the seconds and the time zone: a moment reads as the API's do."""
    payment = PaymentFactory(project=tenant_a.project)
    Payment.objects.filter(pk=payment.pk).update(created_at=datetime(2026, 11, 24, 8, 5, 14, tzinfo=UTC))
    _, client = _root()
    listed = _cells(client.get("/admin/billing/payment/").content.decode())
    shown = _cells(client.get(f"/admin/billing/payment/{quote(payment.pk)}/change/").content.decode())
    assert "2026-11-24 08:05:14Z" in listed
    assert "2026-11-24 08:05:14Z" in shown


def test_overage_is_ticked_on_a_metered_value_and_refused_on_others(tenant_a, catalog, stripe_sdk):
    _, client = _root()
    calls = Feature.objects.create(project=tenant_a.project, key="calls", name="Calls", type="metered")
    seats = Feature.objects.create(project=tenant_a.project, key="seats", name="Seats", type="allocation")
    response = client.post(
        "/admin/catalog/productfeature/add/",
        {"product": catalog.pro.pk, "feature": calls.pk, "value": "1000", "overage": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    row = ProductFeature.objects.get(product=catalog.pro, feature=calls)
    assert (row.value, row.per_unit, row.overage) == (1000, False, True)
    assert AuditLogEntry.objects.get(action="product.updated").after["features"] == {
        "calls": {"limit": 1000, "overage": "allowed"}
    }
    audited = AuditLogEntry.objects.count()
    response = client.post(
        "/admin/catalog/productfeature/add/",
        {"product": catalog.pro.pk, "feature": seats.pk, "value": "5", "overage": "on"},
    )
    assert response.status_code == 200
    assert "only a metered feature&#x27;s limit may allow overage" in response.content.decode()
    assert not ProductFeature.objects.filter(feature=seats).exists()
    assert AuditLogEntry.objects.count() == audited
