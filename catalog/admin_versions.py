"""A product's versions in the back office: the list of its published versions on its page, a side-by-side
comparison of two of them (or of its draft), and the draft's publish and discard buttons.

Versions are never edited or deleted here: they are frozen when published (`catalog.services.versions`), and the
draft is published or discarded only through `catalog.services.drafts`, as the versions API does (audited with
the operator, Stripe told). The pages hang on the product's admin (`ProductVersionPages.get_urls`), so they ask
what its change page asks: an operator (staff, `AdminSite.admin_view`) who may view the product; publishing or
discarding the draft asks for the right to change it.
"""

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import formats
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from catalog.models import Product, ProductDraft, ProductVersion
from catalog.services.drafts import product_draft_discard, product_draft_publish
from catalog.versions import product_versions, version_changes, version_contents
from core.actors import Actor
from core.admin_columns import read_only_page
from core.admin_display import STATUS_TONES, ViewOnly, column
from core.admin_generics import ModelAdmin
from core.errors import ApiError
from core.money import money_format

DRAFT = "draft"
# How many of a version's changes its one-line summary names before "and n more".
SUMMARY_CHANGES = 4


def value_json(value: Any) -> str:
    """A feature's value as the API writes it: `{"limit": 1000, "overage": "allowed"}`, `true`, `null`."""
    return json.dumps(value, ensure_ascii=False)


def changes_summary(changes: list[dict[str, Any]] | None) -> str:
    """What a version changed (`catalog.versions.version_changes`; None: it is the first) in one line:
    "api_calls: 1000 → 300; export removed"."""
    if changes is None:
        return "First version"
    parts = [
        f"{c['feature']} added ({value_json(c['after'])})"
        if c["change"] == "added"
        else f"{c['feature']} removed"
        if c["change"] == "removed"
        else f"{c['feature']}: {value_json(c['before'])} → {value_json(c['after'])}"
        for c in changes
    ]
    if not parts:
        return "No feature changed"
    shown = "; ".join(parts[:SUMMARY_CHANGES])
    more = len(parts) - SUMMARY_CHANGES
    return f"{shown}; and {more} more" if more > 0 else shown


def price_text(price: dict[str, Any]) -> str:
    """A version's price in words: "$30.00 a month", "€28.00 every 3 months", "$15.00 once"."""
    currency = price.get("currency") or ""
    if price.get("tiers"):
        amount = f"{price.get('tiers_mode') or 'tiered'} tiers: " + ", ".join(
            f"{money_format(int(tier.get('unit_amount') or 0), currency)} a unit"
            + (f" + {money_format(int(tier['flat_amount']), currency)}" if tier.get("flat_amount") else "")
            + (" beyond" if tier["up_to"] == "inf" else f" up to {tier['up_to']}")
            for tier in price["tiers"]
        )
    elif price.get("unit_amount") is None:
        amount = f"tiered ({currency.upper()})"
    else:
        amount = money_format(int(price["unit_amount"]), currency)
    if price.get("type") != "recurring":
        return f"{amount} once"
    count, interval = price.get("interval_count") or 1, price.get("interval") or "period"
    period = f"a {interval}" if count == 1 else f"every {count} {interval}s"
    if price.get("usage_type") == "metered":
        return f"{amount} a unit used, billed {period}"
    return f"{amount} {period}"


def _moment(value: Any) -> str:
    return "-" if value is None else str(formats.localize(value))


def versions_url(product_id: str, **choices: Any) -> str:
    url = reverse("admin:catalog_product_versions", args=[quote(product_id)])
    return f"{url}?{urlencode(choices)}" if choices else url


@dataclass(frozen=True)
class Side:
    """One column of the comparison: a published version, or the product's draft."""

    choice: str  # the version's number, or "draft"
    title: str
    published: str
    note: str
    features: dict[str, Any]
    prices: list[dict[str, Any]]
    account_cap: dict[str, Any] | None


def account_cap_text(cap: dict[str, Any] | None) -> str | None:
    """A version's account cap in words: "$500.00 a period across its metered features, then block"."""
    if not cap:
        return None
    amount = money_format(int(cap["amount"]), cap["currency"])
    return f"{amount} a period across its metered features, then {cap.get('at_cap') or 'block'}"


def _published(product: Product) -> dict[int, dict[str, Any]]:
    """The product's versions by number. A product older than versions, never changed since, has none written:
    its rows are its latest version."""
    versions = {version["number"]: version for version in product_versions(product)}
    if product.version not in versions:
        contents = version_contents(product)
        versions[product.version] = {
            "number": product.version,
            "published_at": None,
            "note": None,
            "features": contents["features"],
            "prices": contents["prices"],
            "account_cap": contents["account_cap"],
        }
    return versions


def _side(
    product: Product, versions: dict[int, dict[str, Any]], draft: ProductDraft | None, choice: str
) -> Side:
    """The version `choice` names (404 for one the product does not have)."""
    if choice == DRAFT:
        if draft is None:
            raise Http404("The product has no draft.")
        stale = " (stale)" if draft.based_on != product.version else ""
        return Side(
            DRAFT,
            f"Draft on version {draft.based_on}{stale}",
            f"not published (saved {_moment(draft.updated_at)})",
            draft.note,
            draft.features,
            draft_prices(
                version_contents(product)["prices"], draft.prices
            ),  # what publishing it would freeze
            draft.account_cap,
        )
    if not choice.isdigit() or int(choice) not in versions:
        raise Http404("The product has no such version.")
    version = versions[int(choice)]
    latest = " (latest)" if version["number"] == product.version else ""
    return Side(
        str(version["number"]),
        f"Version {version['number']}{latest}",
        _moment(version["published_at"]),
        version["note"] or "",
        version["features"],
        version["prices"],
        version.get("account_cap"),
    )


def draft_prices(prices: list[dict[str, Any]], terms: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The product's active prices with the draft's new terms."""
    return [{**price, **terms.get(price["key"], {})} for price in prices]


def _rerating_url(request: HttpRequest, product: Product) -> str | None:
    """The draft's re-rating as CSV (billing's admin), for an operator who may view subscriptions."""
    if not request.user.has_perm("billing.view_subscription"):
        return None
    return reverse("admin:billing_subscription_rerating", args=[quote(product.pk)])


def _defaults(product: Product, versions: dict[int, dict[str, Any]]) -> tuple[str, str]:
    """The one before the latest, and the latest."""
    earlier = [number for number in versions if number < product.version]
    return str(max(earlier) if earlier else product.version), str(product.version)


def comparison_rows(a: Side, b: Side) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One row per feature key of either side (sorted), each side's value as JSON (None: not given), and one
    row per price key, each side's price in words; `differs` marks the rows whose two sides differ."""
    features = []
    for key in sorted(set(a.features) | set(b.features)):
        given = [value_json(side.features[key]) if key in side.features else None for side in (a, b)]
        features.append({"key": key, "a": given[0], "b": given[1], "differs": given[0] != given[1]})
    prices_a = {price["key"]: price_text(price) for price in a.prices}
    prices_b = {price["key"]: price_text(price) for price in b.prices}
    prices = [
        {
            "key": key,
            "a": prices_a.get(key),
            "b": prices_b.get(key),
            "differs": prices_a.get(key) != prices_b.get(key),
        }
        for key in [*prices_a, *(key for key in prices_b if key not in prices_a)]
    ]
    return features, prices


def versions_section(product: Product) -> dict[str, Any]:
    """The change page's "Versions" section: its versions newest first, each with what it changed, and its draft."""
    versions = _published(product)
    rows = []
    previous: dict[str, Any] | None = None
    for number in sorted(versions):
        version = versions[number]
        if number > 1 and previous is not None:
            compare = (
                versions_url(product.pk, a=previous["number"], b=number),
                f"compare with version {previous['number']}",
            )
        elif number != product.version:
            compare = (versions_url(product.pk, a=number, b=product.version), "compare with the latest")
        else:
            compare = (versions_url(product.pk), "compare")
        rows.append(
            {
                "number": number,
                "published": _moment(version["published_at"]),
                "note": version["note"] or "",
                "latest": number == product.version,
                "summary": changes_summary(version.get("changes", []) if previous else None),
                "compare_url": compare[0],
                "compare_label": compare[1],
            }
        )
        previous = version
    draft = ProductDraft.objects.filter(product=product).first()
    draft_row = None
    if draft is not None:
        draft_row = {
            "based_on": draft.based_on,
            "stale": draft.based_on != product.version,
            "saved": _moment(draft.updated_at),
            "note": draft.note,
            "summary": changes_summary(
                version_changes(versions[product.version]["features"], draft.features)
            ),
            "compare_url": versions_url(product.pk, a=product.version, b=DRAFT),
        }
    return {
        "version_rows": rows[::-1],
        "version_draft": draft_row,
        "versions_url": versions_url(product.pk),
        "tones": STATUS_TONES,
    }


class ProductVersionPages(ModelAdmin[Product]):
    """Mixed into the product's admin: its versions on its change page, the comparison page, the draft's buttons."""

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/versions/", wrap(self.versions_view), name="catalog_product_versions"),
            path(
                "<path:object_id>/versions/draft/publish/",
                wrap(self.draft_publish_view),
                name="catalog_product_draft_publish",
            ),
            path(
                "<path:object_id>/versions/draft/discard/",
                wrap(self.draft_discard_view),
                name="catalog_product_draft_discard",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        product = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if product is not None and self.has_view_permission(request, product):
            context.update(versions_section(product))
        return super().change_view(request, object_id, form_url, context)

    def _versioned(self, request: HttpRequest, object_id: str) -> Product:
        product = self.get_object(request, unquote(object_id))
        if product is None:
            raise Http404("No such product.")
        if not self.has_view_permission(request, product):
            raise PermissionDenied
        return product

    def versions_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Two versions (GET `a` and `b`: a number, or `draft`) side by side, feature by feature and price by price."""
        product = self._versioned(request, object_id)
        versions = _published(product)
        draft = ProductDraft.objects.filter(product=product).first()
        default_a, default_b = _defaults(product, versions)
        a = _side(product, versions, draft, request.GET.get("a") or default_a)
        b = _side(product, versions, draft, request.GET.get("b") or default_b)
        features, prices = comparison_rows(a, b)
        choices = [(str(number), f"Version {number}") for number in sorted(versions, reverse=True)]
        if draft is not None:
            choices.insert(0, (DRAFT, f"Draft on version {draft.based_on}"))
        can_change = draft is not None and self.has_change_permission(request, product)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Versions of {product.key}",
            "opts": self.opts,
            "original": product,
            "product": product,
            "a": a,
            "b": b,
            "choices": choices,
            "features": features,
            "prices": prices,
            "account_cap": {
                "a": account_cap_text(a.account_cap),
                "b": account_cap_text(b.account_cap),
                "differs": a.account_cap != b.account_cap,
            },
            "differing": sum(row["differs"] for row in features),
            "draft": draft,
            "draft_stale": draft is not None and draft.based_on != product.version,
            "draft_url": versions_url(product.pk, a=product.version, b=DRAFT),
            "rerating_url": _rerating_url(request, product) if draft is not None else None,
            "can_publish": can_change,
            "tones": STATUS_TONES,
        }
        return TemplateResponse(request, "admin/catalog/product/versions.html", context)

    def _draft_changed(self, request: HttpRequest, object_id: str) -> Product:
        product = self._versioned(request, object_id)
        if not self.has_change_permission(request, product):
            raise PermissionDenied
        return product

    def draft_publish_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        product = self._draft_changed(request, object_id)
        before = product.version
        try:
            published = product_draft_publish(actor=Actor.user(request.user), product=product)
        except ApiError as exc:
            now = Product.objects.filter(pk=product.pk).values_list("version", flat=True).get()
            if now == before:
                self.message_user(request, f"The draft was not published: {exc.message}", messages.ERROR)
                b = DRAFT if ProductDraft.objects.filter(product=product).exists() else now
                return HttpResponseRedirect(versions_url(product.pk, a=now, b=b))
            self.message_user(
                request,
                f"Version {now} was published; Stripe was not told: {exc.message} (run sync_catalog)",
                messages.WARNING,
            )
            return HttpResponseRedirect(versions_url(product.pk, a=before, b=now))
        self.message_user(
            request, f"The draft was published as version {published.version}.", messages.SUCCESS
        )
        return HttpResponseRedirect(versions_url(product.pk, a=before, b=published.version))

    def draft_discard_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        product = self._draft_changed(request, object_id)
        try:
            product_draft_discard(actor=Actor.user(request.user), product=product)
        except ApiError as exc:
            self.message_user(request, f"The draft was not discarded: {exc.message}", messages.ERROR)
        else:
            self.message_user(request, "The draft was discarded.", messages.SUCCESS)
        return HttpResponseRedirect(versions_url(product.pk))


def _version_features(version: ProductVersion) -> str:
    return format_html(
        '<pre class="tg-json">{}</pre>', json.dumps(version.features, indent=2, ensure_ascii=False)
    )


def _version_prices(version: ProductVersion) -> str:
    return (
        format_html_join(
            mark_safe("<br>"), "{}: {}", ((price["key"], price_text(price)) for price in version.prices)
        )
        or "-"
    )


_READ_ONLY, _EXCLUDED = read_only_page(
    ProductVersion,
    money=(),
    hidden=("values",),  # the resolver's copy of `features`, by feature id
    shown_as={
        "features": _version_features,
        "prices": _version_prices,
        "account_cap": lambda version: account_cap_text(version.account_cap) or "-",
    },
    labels={"number": "Version", "prices": "Prices when published"},
)


@admin.register(ProductVersion)
class ProductVersionAdmin(ViewOnly, ModelAdmin[ProductVersion]):
    """Every published version of every product, read-only: versions are frozen when published."""

    list_display = [
        "product",
        column("number", "Version"),
        column("published_at", "Published"),
        "latest",
        "note",
    ]
    list_filter = ["product__project"]
    search_fields = ["product__key", "product__id", "note"]
    list_select_related = ["product"]
    ordering = ["-published_at", "-number"]
    readonly_fields = [*_READ_ONLY, "latest", "compare"]
    exclude = _EXCLUDED

    @admin.display(description="Latest", boolean=True)
    def latest(self, version: ProductVersion) -> bool:
        return version.number == version.product.version

    @admin.display(description="Comparison")
    def compare(self, version: ProductVersion) -> str:
        if version.number > 1:
            return format_html(
                '<a href="{}">Compare with version {}</a>',
                versions_url(version.product_id, a=version.number - 1, b=version.number),
                version.number - 1,
            )
        return format_html(
            '<a href="{}">Compare</a>', versions_url(version.product_id, a=1, b=version.product.version)
        )
