"""A customer's own spend cap on a metered feature's overage (`SpendCap`), in place of the plan's
(`attach.caps_attach`), and their account cap across their metered features (`entitlements.account_cap`): set (created or replaced) and removed through here, audited with the key or operator
and the reason. The cap travels in the customer's cached structure, so a consume reads nothing more; setting or
removing one moves the customer's structure version on commit.
"""

from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog.models import Feature
from catalog.pricing import terms_amount
from catalog.rules import account_cap_parse, spend_cap_parse
from catalog.selectors import feature_by_key
from core.actors import Actor
from core.audit import audit_record
from core.errors import InvalidRequest, NotFound
from core.wording import with_article
from customers.models import Customer
from entitlements import cache as ent_cache
from entitlements import changes, usage_read
from entitlements.account_cap import account_billed
from entitlements.attach import metered_terms
from entitlements.models import SpendCap
from entitlements.services.customers import customers_ensure
from projects.models import Project


def spend_cap_set(
    *,
    project: Project,
    external_id: str,
    feature_key: str | None,
    cap: Any,
    actor: Actor,
    reason: str = "",
) -> tuple[SpendCap, bool]:
    """Sets the customer's spend cap on the feature (`catalog.rules.spend_cap_parse`'s shape), or without a
    feature their account cap across their metered features (`catalog.rules.account_cap_parse`'s); (the cap,
    whether it is new). Refused below what the customer already used this period (`cap_below_usage`: in units
    past the limit, or in money their metered prices bill for the period), and on a feature that is not
    metered."""
    feature = None if feature_key is None else feature_by_key(project=project, key=feature_key)
    if feature is not None and feature.type != Feature.Type.METERED:
        raise InvalidRequest(
            f"feature: {feature.key!r} is {with_article(feature.type)} feature; spend caps bound a metered "
            "feature's overage.",
            code="feature_not_metered",
            param="feature",
        )
    shaped = _shaped(cap) if feature is not None else account_cap_parse(cap, param="cap")
    customer_id = customers_ensure(project=project, external_ids=[external_id])[external_id]
    _not_below_usage(project, external_id, customer_id, feature, shaped)
    with transaction.atomic():
        if (
            feature is None
        ):  # uses judged on a plan's account cap lock the customer's row (`services.account_caps`)
            Customer.objects.select_for_update().filter(pk=customer_id).values_list("pk").first()
        stored = SpendCap.objects.select_for_update().filter(customer_id=customer_id, feature=feature).first()
        before = {"cap": stored.cap} if stored is not None else None
        if stored is None:
            stored = SpendCap.objects.create(
                project=project, customer_id=customer_id, feature=feature, cap=shaped
            )
        else:
            SpendCap.objects.filter(pk=stored.pk).update(cap=shaped, updated_at=timezone.now())
            stored.cap = shaped
        audit_record(
            actor=actor,
            action="spend_cap.set",
            target=stored,
            project=project,
            reason=reason,
            before=before,
            after={"customer": external_id, "feature": feature_key, "cap": shaped},
        )
        changes.structure_changed(project_id=project.pk, external_id=external_id)
    return stored, before is None


def _shaped(cap: Any) -> dict[str, Any]:
    """A feature's cap as given: exactly one of units and amount (`catalog.rules.spend_cap_parse`), in its
    metered price's currency (only an account cap names one)."""
    if isinstance(cap, dict) and "currency" in cap:
        raise InvalidRequest(
            "cap: a feature's cap is in its metered price's currency; only an account cap (no feature) names one.",
            code="parameter_conflict",
            param="cap",
        )
    measures = [key for key in ("units", "amount") if isinstance(cap, dict) and key in cap]
    if len(measures) != 1:
        raise InvalidRequest(
            "cap: give exactly one of units and amount.",
            code="parameter_conflict" if measures else "parameter_missing",
            param="cap",
        )
    return spend_cap_parse(cap, param="cap")


def _not_below_usage(
    project: Project, external_id: str, customer_id: str, feature: Feature | None, cap: dict[str, Any]
) -> None:
    """400 `cap_below_usage` when the customer's use this period is already past what `cap` allows."""
    structure = ent_cache.structure_fresh(project=project, external_id=external_id)
    usage = usage_read.resolve_usage(customer_id=customer_id, structure=structure, now=timezone.now())
    if feature is None:
        ids = {entry["id"]: key for key, entry in structure["features"].items()}
        priced = {
            ids[feature_id]: terms
            for feature_id, terms in metered_terms(customer_id, set(ids)).items()
            if terms["currency"] == cap["currency"]
        }
        billed = account_billed({"prices": priced}, usage)
        if billed > cap["amount"]:
            raise InvalidRequest(
                f"cap: the period's use already bills {billed} {cap['currency']}; the cap allows {cap['amount']}.",
                code="cap_below_usage",
                param="cap",
            )
        return
    entry = structure["features"].get(feature.key)
    if entry is None:
        return
    # What a use judges the cap on: the feature's use less the units credits paid (a credits waterfall), which no
    # metered price bills.
    counted = usage["used"].get(feature.key, 0) - usage.get("covered", {}).get(feature.key, 0)
    limit = int(entry["limit"] or 0)
    if "units" in cap and counted > limit + cap["units"]:
        raise InvalidRequest(
            f"cap: {counted - limit} units past the limit are used this period; the cap allows {cap['units']}.",
            code="cap_below_usage",
            param="cap",
        )
    if "amount" in cap:
        terms = metered_terms(customer_id, {feature.pk}).get(feature.pk)
        billed = terms_amount(terms, counted) if terms else 0
        if billed > cap["amount"]:
            raise InvalidRequest(
                f"cap: the period's use already bills {billed}; the cap allows {cap['amount']}.",
                code="cap_below_usage",
                param="cap",
            )


def spend_cap_delete(*, project: Project, cap_id: str, actor: Actor, reason: str = "") -> SpendCap:
    """Removes the customer's cap (their plan's applies again); the cap as it was."""
    stored = SpendCap.objects.select_related("customer", "feature").filter(project=project, pk=cap_id).first()
    if stored is None:
        raise NotFound(f"No such spend cap: {cap_id!r}.", param="id")
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="spend_cap.deleted",
            target=stored,
            project=project,
            reason=reason,
            before={
                "customer": stored.customer.external_id,
                "feature": stored.feature.key if stored.feature is not None else None,
                "cap": stored.cap,
            },
        )
        SpendCap.objects.filter(pk=stored.pk).delete()
        changes.structure_changed(project_id=project.pk, external_id=stored.customer.external_id)
    return stored
