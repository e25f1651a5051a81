"""Reads of coupons and promotion codes, always within one project."""

from django.db.models import Q, QuerySet

from billing.models import Coupon, PromotionCode
from catalog.models import Product
from core.errors import NotFound
from projects.models import Project


def coupon_list(*, project: Project) -> QuerySet[Coupon]:
    return Coupon.objects.filter(project=project, deleted_at__isnull=True).order_by("-created_at", "-id")


def coupon_get(*, project: Project, key_or_id: str, param: str | None = None) -> Coupon:
    coupon = coupon_list(project=project).filter(Q(key=key_or_id) | Q(pk=key_or_id)).first()
    if coupon is None:
        raise NotFound(f"No such coupon: {key_or_id!r}.", param=param)
    return coupon


def coupon_product_keys(*, coupon: Coupon) -> list[str]:
    """The keys of the products a coupon is limited to (`applies_to` holds their ids), in its order."""
    keys = dict(
        Product.objects.filter(project_id=coupon.project_id, pk__in=coupon.applies_to).values_list(
            "pk", "key"
        )
    )
    return [keys.get(pk, pk) for pk in coupon.applies_to]


def promotion_code_list(
    *, project: Project, coupon: Coupon | None = None, active: bool | None = None
) -> QuerySet[PromotionCode]:
    codes = PromotionCode.objects.filter(project=project)
    if coupon is not None:
        codes = codes.filter(coupon=coupon)
    if active is not None:
        codes = codes.filter(active=active)
    return codes.select_related("coupon").order_by("-created_at", "-id")


def promotion_code_get(*, project: Project, promotion_code_id: str) -> PromotionCode:
    promo = promotion_code_list(project=project).filter(pk=promotion_code_id).first()
    if promo is None:
        raise NotFound(f"No such promotion code: {promotion_code_id!r}.")
    return promo


def promotion_code_by_code(*, project: Project, code: str) -> PromotionCode | None:
    """The project's promotion code spelled `code`, in any case (codes compare case-insensitively)."""
    return promotion_code_list(project=project).filter(code__iexact=code).first()
