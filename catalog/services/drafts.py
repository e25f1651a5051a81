"""Product drafts: the next version of a product — its feature values and new terms for its prices — edited as
a draft, then published as its latest version (`products.product_update` writes it) — refused when another version
was published since it was drafted, never overwriting that one.
"""

from typing import Any

from django.db import transaction

from catalog.models import Price, Product, ProductDraft
from catalog.rules import MAX_UNIT_AMOUNT, UNSET, is_minor_units, price_amounts_check
from catalog.selectors import product_features
from catalog.services.products import account_cap_normalized, features_normalized, product_update
from catalog.services.stripe_sync import price_stripe_sync
from catalog.services.versions import version_stripe_prices_fill
from core.actors import Actor
from core.audit import audit_record
from core.errors import InvalidRequest, NotFound


def draft_prices_normalized(*, product: Product, prices: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """New terms for some of the product's active prices, by price key, checked as a price's amounts are: a
    per-unit price takes `{"unit_amount": n}`, a tiered one `{"tiers": [...]}` (its tiers mode stays). What
    defines what is sold (currency, interval, usage type, meter) is fixed: a new one is a new price."""
    active = {price.key: price for price in Price.objects.filter(product=product, active=True)}
    normalized: dict[str, dict[str, Any]] = {}
    for key in sorted(prices):
        param = f"prices.{key}"
        price = active.get(key)
        if price is None:
            raise InvalidRequest(
                f"{param}: {product.key!r} has no active price {key!r}.", code="unknown_price", param=param
            )
        terms = prices[key]
        tiered = price.billing_scheme == Price.BillingScheme.TIERED
        wanted = "tiers" if tiered else "unit_amount"
        if not isinstance(terms, dict) or set(terms) != {wanted}:
            raise InvalidRequest(
                f'{param}: a {"tiered" if tiered else "per-unit"} price is repriced with {{"{wanted}": …}} '
                "(its other terms are fixed: a new one is a new price).",
                code="invalid_parameter",
                param=param,
            )
        amount = terms.get("unit_amount")
        if not tiered and not is_minor_units(amount):
            raise InvalidRequest(
                f"{param}.unit_amount: an integer of minor units from 0 to {MAX_UNIT_AMOUNT}.",
                code="invalid_parameter",
                param=f"{param}.unit_amount",
            )
        try:
            checked = price_amounts_check(
                billing_scheme=price.billing_scheme,
                unit_amount=amount,
                tiers_mode=price.tiers_mode or None,
                tiers=terms.get("tiers"),
            )
        except InvalidRequest as exc:
            raise InvalidRequest(
                f"{param}.{exc.message}", code=exc.code, param=f"{param}.{exc.param}" if exc.param else param
            ) from exc
        normalized[key] = {"tiers": checked.tiers} if tiered else {"unit_amount": checked.unit_amount}
    return normalized


def _draft_answer(product: Product) -> dict[str, Any] | None:
    draft = ProductDraft.objects.filter(product=product).first()
    if draft is None:
        return None
    return {
        "features": draft.features,
        "account_cap": draft.account_cap,
        "prices": draft.prices,
        "based_on": draft.based_on,
        "note": draft.note,
    }


def product_draft_put(
    *,
    actor: Actor,
    product: Product,
    features: dict[str, Any] | None = None,
    prices: dict[str, Any] | None = None,
    account_cap: dict[str, Any] | None = UNSET,
    note: str = "",
) -> ProductDraft:
    """Drafts the product's next version on top of its latest: `features` (validated as `PATCH /products`
    validates them, stored in their normalized shape; none: the latest version's), `account_cap` (as `PATCH`
    takes it, None for none; left out: the latest version's) and `prices`, new terms for some of its prices
    (`draft_prices_normalized`; none: no price changes). Replaces an earlier draft. Audited."""
    normalized = features_normalized(
        project=product.project, features=product_features(product) if features is None else features
    )
    terms = draft_prices_normalized(product=product, prices=prices or {})
    cap = None if account_cap is UNSET else account_cap_normalized(account_cap)
    with transaction.atomic():
        locked = Product.objects.select_for_update().get(pk=product.pk)
        before = _draft_answer(locked)
        draft, _ = ProductDraft.objects.update_or_create(
            product=locked,
            defaults={
                "features": normalized,
                "account_cap": locked.account_cap if account_cap is UNSET else cap,
                "prices": terms,
                "based_on": locked.version,
                "note": note,
            },
        )
        after = _draft_answer(locked)
        if after != before:
            audit_record(
                actor=actor,
                action="product.draft_saved",
                target=locked,
                project=locked.project,
                before=before,
                after=after,
            )
    return draft


def product_draft_discard(*, actor: Actor, product: Product) -> ProductDraft:
    """Throws the product's draft away (404 `no_draft` when it has none) and returns it as it was. Audited."""
    with transaction.atomic():
        locked = Product.objects.select_for_update().get(pk=product.pk)
        draft = ProductDraft.objects.filter(product=locked).first()
        if draft is None:
            raise NotFound("The product has no draft.", code="no_draft")
        before = _draft_answer(locked)
        ProductDraft.objects.filter(product=locked).delete()
        draft.product = locked
        audit_record(
            actor=actor,
            action="product.draft_discarded",
            target=locked,
            project=locked.project,
            before=before,
        )
    return draft


def product_draft_publish(*, actor: Actor, product: Product, version: int | None = None) -> Product:
    """Publishes the product's draft as its next version (`products.product_update` with the draft's features,
    which writes the version, the audit entry and Stripe), then drops the draft. `version`: the number the caller
    expects to publish (a retry of a publish that went through answers the product as it is). Refused with 409
    `draft_stale` (checked by `product_update` under the product's lock) when a version was published since the
    draft was made, and 404 `no_draft` without one."""
    latest = Product.objects.filter(pk=product.pk).values_list("version", flat=True).get()
    draft = ProductDraft.objects.filter(product_id=product.pk).first()
    if draft is None:
        if version is not None and version == latest:
            # This publish went through already: finish telling Stripe of the prices it repriced, in case the
            # first attempt stopped before (each a new Stripe price, under the price's own idempotency key).
            for price in Price.objects.filter(product_id=product.pk, stripe_price_id="").exclude(
                stripe_price_history=[]
            ):
                price_stripe_sync(price=price)
            version_stripe_prices_fill(product.pk, latest)
            return product
        raise NotFound("The product has no draft.", code="no_draft")
    if version is not None and version != draft.based_on + 1:
        raise InvalidRequest(
            f"version: the draft would publish version {draft.based_on + 1}, not {version}.",
            code="version_mismatch",
            param="version",
        )
    return product_update(
        actor=actor, product=product, features=draft.features, account_cap=draft.account_cap, draft=draft
    )
