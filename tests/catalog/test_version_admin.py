"""Product versions in the back office (#52 point 1): the product page lists its versions read-only, a comparison
page shows two versions (or the draft) side by side with the rows that differ marked, and the draft is published
or discarded there through the draft services — a stale or unchanged draft refused with the service's words."""

import re
from html import unescape

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission, User
from django.test import Client

from catalog.models import Product, ProductDraft, ProductVersion
from catalog.services.drafts import product_draft_publish, product_draft_put
from catalog.services.features import feature_create
from catalog.services.products import product_update
from core.models import AuditLogEntry
from tests.catalog import ACTOR

V2 = {"api_calls": 1000, "export": True}
V3 = {"api_calls": 300, "export": True, "seats": {"per_unit": 5}}


@pytest.fixture
def pro(tenant_a, catalog) -> Product:
    """`pro` at version 3: version 1 gives nothing, 2 gives `V2`, 3 (published from a draft) gives `V3`."""
    for key, kind in (("api_calls", "metered"), ("export", "boolean"), ("seats", "allocation")):
        feature_create(project=tenant_a.project, actor=ACTOR, key=key, name=key, type=kind)
    product = product_update(actor=ACTOR, product=catalog.pro, features=V2)
    product_draft_put(actor=ACTOR, product=product, features=V3, note="seats per licence")
    product = product_draft_publish(actor=ACTOR, product=product)
    assert product.version == 3
    return Product.objects.get(pk=catalog.pro.pk)


def _root() -> Client:
    user = User.objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(user)
    return client


def _staff(name: str, *permissions: str) -> Client:
    user = User.objects.create_user(name, password="pw", is_staff=True)
    for codename in permissions:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="catalog", codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client


def _versions(product: Product, query: str = "") -> str:
    return f"/admin/catalog/product/{quote(product.pk)}/versions/{query}"


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _table_rows(html: str, kind: str) -> list[tuple[str, str, str, str]]:
    """(key, side A, side B, difference) of each `tg-feature` or `tg-price` row of the comparison, as read."""
    rows = re.findall(rf'<tr class="tg-{kind}[^"]*" data-{kind}="[^"]*"[^>]*>(.*?)</tr>', html, re.S)
    cells = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S) for row in rows]
    return [tuple(_text(cell) for cell in row) for row in cells]  # type: ignore[misc]


def _changed(html: str, kind: str) -> list[str]:
    return re.findall(rf'<tr class="tg-{kind} tg-changed" data-{kind}="([^"]+)" data-differs="true"', html)


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_the_product_page_lists_its_versions_read_only(pro):
    client = _root()
    page = client.get(f"/admin/catalog/product/{quote(pro.pk)}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    rows = re.findall(r'<tr class="tg-version" data-version="(\d+)">(.*?)</tr>', html, re.S)
    listed = [
        (number, [_text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)])
        for number, row in rows
    ]
    published = {
        v.number: v.published_at.strftime("%Y-%m-%d %H:%M:%SZ")
        for v in ProductVersion.objects.filter(product=pro)
    }
    assert listed == [
        (
            "3",
            [
                "3",
                published[3],
                "seats per licence",
                "latest",
                'api_calls: 1000 → 300; seats added ({"per_unit": 5})',
                "compare with version 2",
            ],
        ),
        (
            "2",
            [
                "2",
                published[2],
                "—",
                "—",
                "api_calls added (1000); export added (true)",
                "compare with version 1",
            ],
        ),
        ("1", ["1", published[1], "—", "—", "First version", "compare with the latest"]),
    ]
    assert f'href="{_versions(pro, "?a=2&amp;b=3")}"' in html
    assert f'href="{_versions(pro, "?a=1&amp;b=3")}"' in html
    assert f'<a href="{_versions(pro)}">Compare versions</a>' in html
    # A section, never a form: nothing of a version is posted with the product's form.
    assert not re.search(r'name="versions-', html)
    assert 'class="tg-version-draft"' not in html  # no draft yet


def test_versions_cannot_be_added_changed_or_deleted_in_the_admin(pro):
    client = _root()
    version = ProductVersion.objects.get(product=pro, number=2)
    base = "/admin/catalog/productversion/"
    listing = client.get(base).content.decode()
    assert f'href="{base}{version.pk}/change/"' in listing
    assert f'href="{base}add/"' not in listing
    assert 'value="delete_selected"' not in listing
    view = client.get(f"{base}{version.pk}/change/").content.decode()
    assert "<h1>View product version</h1>" in view
    assert 'name="_save"' not in view
    assert f'href="{_versions(pro, "?a=1&amp;b=2")}">Compare with version 1</a>' in view
    before = list(ProductVersion.objects.values())
    assert client.get(f"{base}add/").status_code == 403
    assert client.post(f"{base}{version.pk}/change/", {"note": "forged"}).status_code == 403
    assert client.post(f"{base}{version.pk}/delete/", {"post": "yes"}).status_code == 403
    assert list(ProductVersion.objects.values()) == before


def test_the_comparison_shows_two_versions_side_by_side(pro):
    client = _root()
    page = client.get(_versions(pro))  # the one before the latest, and the latest
    assert page.status_code == 200
    html = page.content.decode()
    assert _table_rows(html, "feature") == [
        ("api_calls", "1000", "300", "changed"),
        ("export", "true", "true", ""),
        ("seats", "not given", '{"per_unit": 5}', "changed"),
    ]
    assert _changed(html, "feature") == ["api_calls", "seats"]
    assert "Features — 2 of 3 differ" in _text(html)
    assert re.search(r'<th scope="col" class="tg-side-a">Version 2</th>', html)
    assert re.search(r'<th scope="col" class="tg-side-b">Version 3 \(latest\)</th>', html)
    assert _table_rows(html, "price") == [
        ("pro-monthly", "$30.00 a month", "$30.00 a month", ""),
        ("pro-monthly-eur", "€28.00 a month", "€28.00 a month", ""),
    ]
    assert _changed(html, "price") == []
    assert 'id="tg-draft"' not in html  # no draft: no buttons

    first = client.get(_versions(pro, "?a=1&b=3")).content.decode()
    assert _table_rows(first, "feature") == [
        ("api_calls", "not given", "300", "changed"),
        ("export", "not given", "true", "changed"),
        ("seats", "not given", '{"per_unit": 5}', "changed"),
    ]
    same = client.get(_versions(pro, "?a=3&b=3")).content.decode()
    assert _changed(same, "feature") == []


def test_the_draft_is_a_choice_of_the_comparison(pro):
    product_draft_put(
        actor=ACTOR, product=pro, features={"api_calls": None, "seats": {"per_unit": 5}}, note="unlimited"
    )
    client = _root()
    html = client.get(_versions(pro, "?a=3&b=draft")).content.decode()
    assert _table_rows(html, "feature") == [
        ("api_calls", "300", "null", "changed"),
        ("export", "true", "not given", "changed"),
        ("seats", '{"per_unit": 5}', '{"per_unit": 5}', ""),
    ]
    assert re.search(r'<th scope="col" class="tg-side-b">Draft on version 3</th>', html)
    assert '<option value="draft" selected>Draft on version 3</option>' in html
    assert f'action="{_versions(pro, "draft/publish/")}"' in html
    assert 'value="Publish draft"' in html
    assert 'value="Discard draft"' in html
    # The draft's prices are those publishing it would freeze: the product's active ones.
    assert [row[0] for row in _table_rows(html, "price")] == ["pro-monthly", "pro-monthly-eur"]
    # b=draft alone compares it with the one before the latest; the product page lists the draft too.
    assert "Version 2" in _text(client.get(_versions(pro, "?b=draft")).content.decode())
    change = client.get(f"/admin/catalog/product/{quote(pro.pk)}/change/").content.decode()
    draft_row = re.search(r'<tr class="tg-version-draft" data-version="draft">(.*?)</tr>', change, re.S)
    assert draft_row is not None
    assert "api_calls: 300 → null; export removed" in _text(draft_row.group(1))
    assert f'href="{_versions(pro, "?a=3&amp;b=draft")}"' in change


def test_publishing_the_draft_makes_it_the_latest_version(pro):
    product_draft_put(actor=ACTOR, product=pro, features={"api_calls": 50}, note="smaller")
    client = _root()
    response = client.post(_versions(pro, "draft/publish/"), follow=True)
    assert response.redirect_chain == [(_versions(pro, "?a=3&b=4"), 302)]
    assert _messages(response) == ["The draft was published as version 4."]
    pro.refresh_from_db()
    assert pro.version == 4
    assert not ProductDraft.objects.filter(product=pro).exists()
    version = ProductVersion.objects.get(product=pro, number=4)
    assert (version.features, version.note) == ({"api_calls": 50}, "smaller")
    entry = AuditLogEntry.objects.filter(action="product.updated", target_id=pro.pk).latest("created_at")
    assert (entry.actor_type, entry.actor_repr) == ("user", "root")
    html = response.content.decode()
    assert _changed(html, "feature") == ["api_calls", "export", "seats"]
    assert 'id="tg-draft"' not in html


def test_a_stale_draft_is_refused_with_the_services_words(pro):
    product_draft_put(actor=ACTOR, product=pro, features={"api_calls": 50})
    product_update(actor=ACTOR, product=pro, features={"api_calls": 10})  # version 4, after the draft
    client = _root()
    response = client.post(_versions(pro, "draft/publish/"), follow=True)
    assert response.redirect_chain == [(_versions(pro, "?a=4&b=draft"), 302)]
    assert _messages(response) == [
        "The draft was not published: Version 4 was published after this draft was made on version 3: save the "
        "draft again on the latest version."
    ]
    html = response.content.decode()
    assert '<li class="error">The draft was not published: Version 4 was published' in html
    assert "Draft on version 3 (stale)" in html
    pro.refresh_from_db()
    assert pro.version == 4
    assert ProductDraft.objects.filter(product=pro, based_on=3).exists()


def test_a_draft_that_changes_nothing_is_refused(pro):
    product_draft_put(actor=ACTOR, product=pro, features=V3)
    response = _root().post(_versions(pro, "draft/publish/"), follow=True)
    assert _messages(response) == [
        "The draft was not published: The draft gives and charges what the latest version does: there is nothing to publish."
    ]
    assert Product.objects.get(pk=pro.pk).version == 3


def test_discarding_the_draft(pro):
    product_draft_put(actor=ACTOR, product=pro, features={"api_calls": 50})
    client = _root()
    response = client.post(_versions(pro, "draft/discard/"), follow=True)
    assert _messages(response) == ["The draft was discarded."]
    assert not ProductDraft.objects.filter(product=pro).exists()
    assert Product.objects.get(pk=pro.pk).version == 3
    assert AuditLogEntry.objects.get(action="product.draft_discarded").actor_repr == "root"
    again = client.post(_versions(pro, "draft/discard/"), follow=True)
    assert _messages(again) == ["The draft was not discarded: The product has no draft."]


def test_the_buttons_post_with_csrf_and_a_get_changes_nothing(pro):
    product_draft_put(actor=ACTOR, product=pro, features={"api_calls": 50})
    user = User.objects.create_superuser("root", password="pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(_versions(pro, "draft/publish/")).status_code == 403  # no CSRF token
    assert client.get(_versions(pro, "draft/publish/")).status_code == 405
    assert client.get(_versions(pro, "draft/discard/")).status_code == 405
    page = client.get(_versions(pro, "?a=3&b=draft")).content.decode()
    for action in ("publish", "discard"):
        form = re.search(rf'<form method="post" action="[^"]*/draft/{action}/">(.*?)</form>', page, re.S)
        assert form is not None, action
        assert 'name="csrfmiddlewaretoken"' in form.group(1), action
    assert Product.objects.get(pk=pro.pk).version == 3
    assert ProductDraft.objects.filter(product=pro).exists()


def test_only_operators_who_may_see_or_change_the_product_get_in(pro):
    product_draft_put(actor=ACTOR, product=pro, features={"api_calls": 50})
    customer = User.objects.create_user("not-staff", password="pw")  # a user, not an operator
    outsider = Client()
    outsider.force_login(customer)
    for method, url in (("get", _versions(pro)), ("post", _versions(pro, "draft/publish/"))):
        response = getattr(outsider, method)(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    assert Client().get(_versions(pro)).status_code == 302  # not logged in
    # staff without the product's view permission
    assert _staff("ops-nobody").get(_versions(pro)).status_code == 403

    reader = _staff("ops-reader", "view_product")
    page = reader.get(_versions(pro, "?a=3&b=draft"))
    assert page.status_code == 200
    assert 'value="Publish draft"' not in page.content.decode()
    assert reader.post(_versions(pro, "draft/publish/")).status_code == 403
    assert reader.post(_versions(pro, "draft/discard/")).status_code == 403
    assert Product.objects.get(pk=pro.pk).version == 3
    assert ProductDraft.objects.filter(product=pro).exists()


def test_a_missing_product_version_or_draft_is_a_404(pro):
    client = _root()
    assert client.get(_versions(pro, "?a=9")).status_code == 404
    assert client.get(_versions(pro, "?a=2&b=0")).status_code == 404
    assert client.get(_versions(pro, "?a=two")).status_code == 404
    assert client.get(_versions(pro, "?b=draft")).status_code == 404  # it has no draft
    assert client.get("/admin/catalog/product/prd_missing/versions/").status_code == 404
    assert client.post("/admin/catalog/product/prd_missing/versions/draft/publish/").status_code == 404
