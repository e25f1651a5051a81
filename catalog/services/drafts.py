"""Product drafts: the next version of a product edited as a draft, then published as its latest version
(`products.product_update` writes it) — refused when another version was published since it was drafted, never
overwriting that one.
"""

from typing import Any

from django.db import transaction

from catalog.models import Product, ProductDraft
from catalog.services.products import features_normalized, product_update
from core.actors import Actor
from core.audit import audit_record
from core.errors import InvalidRequest, NotFound


def _draft_answer(product: Product) -> dict[str, Any] | None:
    draft = ProductDraft.objects.filter(product=product).first()
    if draft is None:
        return None
    return {"features": draft.features, "based_on": draft.based_on, "note": draft.note}


def product_draft_put(
    *, actor: Actor, product: Product, features: dict[str, Any], note: str = ""
) -> ProductDraft:
    """Drafts the product's next version: `features` (validated as `PATCH /products` validates them, stored in
    their normalized shape) on top of its latest version. Replaces an earlier draft. Audited."""
    normalized = features_normalized(project=product.project, features=features)
    with transaction.atomic():
        locked = Product.objects.select_for_update().get(pk=product.pk)
        before = _draft_answer(locked)
        draft, _ = ProductDraft.objects.update_or_create(
            product=locked, defaults={"features": normalized, "based_on": locked.version, "note": note}
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
            return product  # this publish went through already
        raise NotFound("The product has no draft.", code="no_draft")
    if version is not None and version != draft.based_on + 1:
        raise InvalidRequest(
            f"version: the draft would publish version {draft.based_on + 1}, not {version}.",
            code="version_mismatch",
            param="version",
        )
    return product_update(actor=actor, product=product, features=draft.features, draft=draft)
