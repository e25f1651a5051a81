"""Why a customer may or may not use each feature: the operators' "explain entitlements" read.

For every feature of the project: the answer the API gives now (`GET /api/v1/entitlements?customer=`, from the
same snapshot) and every source that gives it, blocks it, or could have given it but does not — subscriptions in
any status (past due beyond the grace period, unpaid, canceled … with why), purchases (also expired, not started
or ended by a refund), grants and revocations (also expired or ended), the project's default product and, for
credits, the credit lots — each with where it came from (a purchase, a subscription's paid period, a grant), so
the lots that give sum to the balance the API answers. Which sources are in force is decided by the resolver's own rules
(`resolver.subscription_on`, `purchase_in_force`, `override_in_force`, `product_value`), so the explanation and
the answer cannot disagree.
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from catalog.models import Feature, Product, ProductFeature
from catalog.versions import version_values
from core.money import money_format
from customers.models import Customer
from entitlements import resolver, statements
from entitlements.cache import snapshot_get
from entitlements.entities import entities_credits, entities_used, entity_windows
from entitlements.models import CreditLot, Grant, Purchase, Revocation, SubscriptionSource
from entitlements.selectors import feature_answer
from entitlements.snapshot import FeatureEntry, judged_at
from projects.models import Project

GIVES = "gives"
BLOCKS = "blocks"
NONE = "none"  # does not give it now (or does not include it): the reason says which

_EFFECT_ORDER = {BLOCKS: 0, GIVES: 1, NONE: 2}


@dataclass(frozen=True)
class SourceExplanation:
    """One thing that gives, blocks, or does not (any longer) give a feature, and why, in words."""

    kind: str  # subscription | purchase | grant | revocation | default_product | credit_lot
    id: str
    effect: str  # gives | blocks | none
    why: str
    value: Any = None  # what it gives the feature (for `gives`, and what it would give otherwise)
    product: str = ""


@dataclass(frozen=True)
class FeatureExplanation:
    key: str
    name: str
    type: str
    allowed: bool  # what `GET /api/v1/entitlements/check` answers for a quantity of 1
    verdict: str  # the answer in one sentence
    answer: dict[str, Any]  # the feature's row of `GET /api/v1/entitlements?customer=`, as the API gives it
    sources: list[SourceExplanation] = field(default_factory=list)


@dataclass(frozen=True)
class Explanation:
    customer: str  # the tenant's id of the customer
    now: datetime
    next_change: (
        datetime | None
    )  # the answer changes by itself then (an expiry, a grace or trial end, a reset)
    past_due_grace: timedelta
    features: list[FeatureExplanation]


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration_text(delta: timedelta) -> str:
    """`3 days`, `12 hours`, `90 seconds`: how operators read a setting."""
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _value_text(kind: str, value: Any) -> str:
    if kind in resolver.COUNTED or kind == Feature.Type.CREDITS:
        return "unlimited" if value is None else str(value)
    if kind == Feature.Type.BOOLEAN:
        return "on" if value is True else ("off" if value is False else repr(value))
    return repr(value)


def _subscription_why(subscription: SubscriptionSource, on: bool, now: datetime, grace: timedelta) -> str:
    """Why a subscription gives access or not — the words for `resolver.subscription_on`'s decision."""
    status = subscription.status
    grace_text = duration_text(grace)
    end = subscription.current_period_end
    statuses = SubscriptionSource.Status
    if status == statuses.ACTIVE:
        if subscription.cancel_at_period_end and end is not None:
            if on:
                return f"active; cancels at the end of the period, {_when(end)}"
            return f"was set to cancel at the end of the period, {_when(end)}, which has passed"
        return f"active; current period ends {_when(end)}"
    if status == statuses.TRIALING:
        trial_end = subscription.trial_end
        if trial_end is None:
            return "trialing"
        if now < trial_end:
            return f"trialing until {_when(trial_end)}"
        if on:
            return (
                f"trial ended {_when(trial_end)}; the first payment is not confirmed yet, so access is kept "
                f"for the grace period ({grace_text}), until {_when(trial_end + grace)}"
            )
        return (
            f"trial ended {_when(trial_end)} and the grace period ({grace_text}) ended "
            f"{_when(trial_end + grace)} without a confirmed payment"
        )
    if status == statuses.PAST_DUE:
        since = subscription.current_period_start or subscription.updated_at
        if on:
            return (
                f"past due: the renewal payment failed; access is kept for the grace period ({grace_text}) "
                f"from {_when(since)}, until {_when(since + grace)}"
            )
        return (
            f"past due beyond the grace period: the renewal payment failed and the grace period "
            f"({grace_text}) ended {_when(since + grace)}"
        )
    if status == statuses.UNPAID:
        return "unpaid: Stripe stopped retrying the renewal payment; no access until an invoice is paid"
    if status == statuses.CANCELED:
        return f"canceled {_when(subscription.canceled_at)}: no access"
    if status == statuses.PAUSED:
        return "paused: no access until it is resumed"
    if status == statuses.INCOMPLETE:
        return "incomplete: the first payment has not succeeded yet"
    if status == statuses.INCOMPLETE_EXPIRED:
        return "incomplete_expired: the first payment never succeeded"
    return f"{status}: no access"


def _purchase_why(purchase: Purchase, on: bool, now: datetime) -> str:
    if purchase.revoked_at is not None:
        return (
            f"ended {_when(purchase.revoked_at)}: {purchase.revoke_reason or 'revoked'} "
            f"(payment {purchase.payment_id} is {purchase.payment_status})"
        )
    if purchase.starts_at > now:
        return f"starts {_when(purchase.starts_at)}"
    if not on:
        return f"bought {_when(purchase.starts_at)}, expired {_when(purchase.ends_at)}"
    lasts = "for life" if purchase.ends_at is None else f"until {_when(purchase.ends_at)}"
    if purchase.disputed:
        return f"bought {_when(purchase.starts_at)}, {lasts}; payment disputed: access kept while it is open"
    return f"bought {_when(purchase.starts_at)}, {lasts}"


def _override_why(
    deleted_at: datetime | None, expires_at: datetime | None, reason: str, on: bool, ended: str
) -> str:
    if deleted_at is not None:
        return f"{ended} {_when(deleted_at)} — was: {reason}"
    if not on:
        return f"expired {_when(expires_at)} — was: {reason}"
    lasts = "no expiry" if expires_at is None else f"until {_when(expires_at)}"
    return f"{reason} ({lasts})"


def _lot_origin(lot: CreditLot) -> str:
    if lot.plan_period_id is not None and lot.plan_period is not None:
        period = lot.plan_period
        invoice = period.invoice_number or period.invoice_id
        return (
            f"from subscription invoice {invoice} for the period {_when(period.period_start)} – "
            f"{_when(period.period_end)}"
        )
    if lot.purchase_id:
        return f"from purchase {lot.purchase_id}"
    if lot.entity and lot.returned_at is not None:
        return f"from grant {lot.grant_id} to {lot.entity}, returned to the account {_when(lot.returned_at)}"
    if lot.entity:
        return f"from grant {lot.grant_id}, {lot.entity}'s own"
    return f"from grant {lot.grant_id}"


def _lot_why(lot: CreditLot, on: bool) -> str:
    origin = _lot_origin(lot)
    if lot.owner and lot.voided_at is None:
        return f"{lot.remaining} of {lot.amount} credits left {origin}: spent only by uses naming it"
    if lot.voided_at is not None:
        return f"{lot.amount} credits {origin}, taken back {_when(lot.voided_at)}"
    if lot.expires_at is not None and not on and lot.remaining > 0:
        return f"{lot.amount} credits {origin}, expired {_when(lot.expires_at)} with {lot.remaining} unspent"
    if lot.remaining == 0:
        return f"{lot.amount} credits {origin}, all spent"
    lasts = "no expiry" if lot.expires_at is None else f"expire {_when(lot.expires_at)}"
    return f"{lot.remaining} of {lot.amount} credits left {origin}; {lasts}"


_STEP_WORDS = {"allowance": "the period's allowance", "credits": "credits", "overage": "overage (billed)"}


_CAP_BINDINGS = {"cap": "the feature's spend cap", "account_cap": "the account cap"}


def _verdict(feature: Feature, entry: FeatureEntry, answer: dict[str, Any], allowed: bool) -> str:
    binding = answer.get("binding")
    if binding in _CAP_BINDINGS and not entry["revoked"] and answer["enabled"]:
        wait = answer.get("retry_after")
        when = f"; it frees up in {wait} s, when the period ends" if wait is not None else ""
        said = f"Not allowed: {_CAP_BINDINGS[binding]} is reached ({answer['used']} used{when})."
    else:
        said = _verdict_of_limits(feature, entry, answer, allowed)
    said += _waterfall_words(entry, answer) + _cap_words(entry, answer)
    windows = answer.get("windows") or []
    if not windows or entry["revoked"] or not answer["enabled"]:
        return said
    if binding is not None and binding != "period" and binding not in _CAP_BINDINGS:
        window = next(w for w in windows if w["window"] == binding)
        wait = answer.get("retry_after")
        when = f"; frees up in {wait} s, at {window['resets_at']}" if wait is not None else ""
        said = f"Not allowed: the {binding}'s window is used up ({_window_use(window)}{when})."
    each = ", ".join(f"{_window_use(w)} this {w['window']}" for w in windows)
    return f"{said} Windows: {each}."


def _waterfall_words(entry: FeatureEntry, answer: dict[str, Any]) -> str:
    """A credits waterfall's part of a metered answer, and the step the next unit comes from (`step`), in words."""
    if entry["revoked"] or not answer["enabled"] or answer["type"] != Feature.Type.METERED:
        return ""
    paid = answer.get("credits")
    if paid is None:
        return ""
    said = (
        f" Past the limit {paid['feature']} pays, {paid['cost']} credits a unit: {paid['balance']} left, "
        f"for {paid['units']} more unit{'' if paid['units'] == 1 else 's'} ({paid['covered']} paid with credits "
        "this period)."
    )
    step = answer.get("step")
    return (
        f"{said} The next unit comes from {_STEP_WORDS[step]}." if step else f"{said} Nothing pays for more."
    )


def _cap_words(entry: FeatureEntry, answer: dict[str, Any]) -> str:
    """A metered answer's spend caps in words: the feature's (in units past the limit, or money its price bills)
    and the account's (money all the customer's metered prices bill)."""
    if entry["revoked"] or not answer["enabled"] or answer["type"] != Feature.Type.METERED:
        return ""
    said = ""
    cap = answer.get("cap")
    if cap is not None:
        if cap["units"] is not None:
            use = f"{cap['used_units']} of {cap['units']} units past the limit used"
        else:
            use = f"{_money(cap['used_amount'], cap['currency'])} of {_money(cap['amount'], cap['currency'])} billed"
        said += f" Spend cap ({'the plan' if cap['set_by'] == 'catalog' else 'the customer'}'s, {cap['at_cap']}s at it): {use}."
    account = answer.get("account_cap")
    if account is not None:
        billed, amount = (_money(account[key], account["currency"]) for key in ("used_amount", "amount"))
        said += (
            f" Account cap ({'the plan' if account['set_by'] == 'plan' else 'the customer'}'s, {account['at_cap']}s "
            f"at it): {billed} of {amount} billed across the customer's "
            "metered features this period."
        )
    return said


def _entity_words(customer: Customer, entry: FeatureEntry) -> str:
    """A metered feature's limit per entity in words: each live entity's use this period, the busiest first (at
    most five named); a credits feature's credits per entity: each live entity's own balance, the largest first."""
    own = entities_credits(customer_id=customer.pk, entry=entry, now=time.time())
    if own is not None:
        held = sorted(own["balances"].items(), key=lambda pair: (-pair[1], pair[0]))
        named = ", ".join(f"{entity} {balance}" for entity, balance in held[:5])
        more = f" and {len(held) - 5} more" if len(held) > 5 else ""
        has = f": {named}{more}" if held else "; the customer has none yet"
        end = "returns them to the account" if own["on_remove"] == "return" else "forfeits them"
        each = (
            f"; the plan gives each {own['credits']} with every grant of its credits"
            if "credits" in own
            else ""
        )
        return (
            f" Each of the customer's {own['feature']} may hold credits of its own, spent by the uses naming it "
            f"before the account's (removing it {end}{each}){has}."
        )
    per_entity = entry.get("per_entity")
    if per_entity is None or entry["revoked"]:
        return ""
    live = entities_used(customer_id=customer.pk, entry=entry)
    named = ", ".join(f"{entity} {used}" for entity, used in live[:5])
    more = f" and {len(live) - 5} more" if len(live) > 5 else ""
    use = f": {named}{more} used" if live else "; the customer has none yet"
    windows = "".join(f", {limit} a {name}" for name, limit in entity_windows(entry))
    return f" Each of the customer's {per_entity['feature']} may use {per_entity['limit']} a period{windows}{use}."


def _money(amount: int, currency: str | None) -> str:
    return money_format(amount, currency) if currency else str(amount)


def _window_use(window: dict[str, Any]) -> str:
    held = f", {window['held']} held" if window["held"] else ""
    return f"{window['used']} of {window['limit']}{held}"


def _verdict_of_limits(feature: Feature, entry: FeatureEntry, answer: dict[str, Any], allowed: bool) -> str:
    kind = feature.type
    revoked = entry["revoked"]
    if revoked:
        return "Not allowed: revoked (see the revocation below)."
    if kind == Feature.Type.CREDITS:
        balance = answer["balance"] or 0
        return f"Allowed: {balance} credits left." if allowed else "Not allowed: no credits left."
    if kind in resolver.COUNTED:
        used, limit = answer["used"], answer["limit"]
        if not answer["enabled"]:
            if limit == 0 and entry["sources"]:
                return "Not allowed: the limit is 0."
            return "Not allowed: nothing gives this feature now (see why below)."
        counted = "used this period" if kind == Feature.Type.METERED else "in use"
        held = answer.get("held") or 0
        also = f", {held} held" if held else ""  # held units count against the limit (services.holds)
        if limit is None:
            return f"Allowed: unlimited ({used} {counted}{also})."
        if answer.get("overage") == "allowed":
            past = f", {-answer['remaining']} past it" if answer["remaining"] < 0 else ""
            return (
                f"Allowed: {used} of {limit} {counted}{also}; use may go past the limit{past} "
                "(overage, billed by its metered price)."
            )
        if allowed:
            return f"Allowed: {used} of {limit} {counted}{also}."
        if kind == Feature.Type.METERED:
            return (
                f"Not allowed: the limit is used up ({used} of {limit}{also}; resets {answer['resets_at']})."
            )
        return f"Not allowed: all {limit} are in use{f' ({held} held)' if held else ''}."
    if allowed:
        return f"Allowed: {_value_text(kind, answer['value'])}."
    if entry["sources"]:
        return f"Not allowed: what gives it says {_value_text(kind, answer['value'])}."
    return "Not allowed: nothing gives this feature now (see why below)."


def _product_values(product_ids: set[str]) -> dict[str, resolver.ProductValues]:
    """The latest values of each product (feature id → the resolver's tuple), as the resolver reads them."""
    values: dict[str, resolver.ProductValues] = {pid: {} for pid in product_ids}
    if product_ids:
        for product_id, _, _, feature_id, *given in statements.PRODUCT_VALUES.rows(
            product_ids=sorted(product_ids)
        ):
            values[product_id][feature_id] = tuple(given)  # type: ignore[assignment]
    return values


def entitlements_explain(*, project: Project, customer: Customer) -> Explanation:
    """Every feature of `project` for `customer`: the API's answer now and each source with its effect and why
    (now: the customer's, its test clock's time when it is on one, as the answer's)."""
    snapshot = snapshot_get(project=project, external_id=customer.external_id)
    now = judged_at(snapshot.structure, timezone.now())
    grace = timedelta(seconds=resolver.settings_for(project).past_due_grace_seconds)
    features = list(Feature.objects.filter(project=project).order_by("key"))

    subscriptions = list(
        SubscriptionSource.objects.filter(project=project, customer=customer)
        .select_related("product")
        .order_by("-created_at", "pk")
    )
    purchases = list(
        Purchase.objects.filter(project=project, customer=customer)
        .select_related("product")
        .order_by("-created_at", "pk")
    )
    grants = list(Grant.objects.filter(project=project, customer=customer).order_by("-created_at", "pk"))
    revocations = list(
        Revocation.objects.filter(project=project, customer=customer).order_by("-created_at", "pk")
    )
    lots = list(
        CreditLot.objects.filter(project=project, customer=customer)
        .select_related("plan_period")
        .order_by("-created_at", "pk")
    )
    default_product = (
        Product.objects.filter(project=project, key=project.default_product).first()
        if project.default_product
        else None
    )
    product_ids = {s.product_id for s in subscriptions} | {p.product_id for p in purchases}
    if default_product is not None:
        product_ids.add(default_product.pk)
    values = _product_values(product_ids)
    # A subscriber kept on an earlier version of its product: what that version gives (the answer's values).
    held = {s.pk: resolver.subscription_versions(s.items, now)[0].get(s.product_id, 1) for s in subscriptions}
    earlier = [(s.product_id, held[s.pk]) for s in subscriptions if held[s.pk] != s.product.version]
    frozen = version_values(earlier) if earlier else {}
    # Rollover caps and cadences of the products' credits (feature values), for the words about a subscription's
    # credits.
    rollovers: dict[tuple[str, str], int] = {}
    cadences: dict[tuple[str, str], str] = {}
    for product_id, feature_id, cap, cadence in (
        ProductFeature.objects.filter(product_id__in=product_ids, feature__type=Feature.Type.CREDITS)
        .exclude(rollover__isnull=True, cadence="")
        .values_list("product_id", "feature_id", "rollover", "cadence")
    ):
        if cap is not None:
            rollovers[(product_id, feature_id)] = cap
        if cadence:
            cadences[(product_id, feature_id)] = cadence

    changes: list[datetime | None] = []
    plans: list[tuple[str, str, str, int, bool, str]] = []  # kind, id, product id, quantity, on, why
    for subscription in subscriptions:
        on, change_at = resolver.subscription_on(subscription, now, grace)
        changes.append(change_at)
        plans.append(
            (
                "subscription",
                subscription.pk,
                subscription.product_id,
                subscription.quantity,
                on,
                _subscription_why(subscription, on, now, grace),
            )
        )
    for purchase in purchases:
        on = resolver.purchase_in_force(
            revoked_at=purchase.revoked_at, starts_at=purchase.starts_at, ends_at=purchase.ends_at, now=now
        )
        if purchase.revoked_at is None:
            changes += [purchase.starts_at, purchase.ends_at]
        plans.append(
            (
                "purchase",
                purchase.pk,
                purchase.product_id,
                purchase.quantity,
                on,
                _purchase_why(purchase, on, now),
            )
        )
    if default_product is not None:
        plans.append(
            (
                "default_product",
                default_product.pk,
                default_product.pk,
                1,
                True,
                "the project's default product",
            )
        )
    product_keys = {s.product_id: s.product.key for s in subscriptions}
    product_keys.update({p.product_id: p.product.key for p in purchases})
    if default_product is not None:
        product_keys[default_product.pk] = default_product.key

    explained = []
    for feature in features:
        entry = snapshot.structure["features"].get(feature.key)
        if entry is None:  # created after the snapshot was taken: the next read has it
            continue
        answer = feature_answer(feature.key, entry, snapshot.usage, now=snapshot.structure.get("clock_time"))
        allowed = bool(answer.pop("allowed"))
        sources: list[SourceExplanation] = []
        not_included: list[SourceExplanation] = []
        for kind, pk, product_id, quantity, on, why in plans:
            product = product_keys.get(product_id, product_id)
            given = frozen.get((product_id, held[pk])) if kind == "subscription" else None
            has, value = resolver.product_value(
                values[product_id] if given is None else given, feature, quantity
            )
            if has and kind == "subscription" and feature.type == Feature.Type.CREDITS:
                # The balance is the lots': a subscription's credits arrive as one lot per paid period, or per
                # month or week of it.
                step = cadences.get((product_id, feature.pk))
                every = f"each {step} of a paid period" if step else "each paid period"
                why = f"{why}; {every} grants {_value_text(feature.type, value)} credits, expiring at its end"
                if (cap := rollovers.get((product_id, feature.pk))) is not None:
                    why = f"{why}, up to {cap} unspent ones carried into the next {step or 'period'}"
            if has:
                sources.append(
                    SourceExplanation(kind, pk, GIVES if on else NONE, why, value=value, product=product)
                )
            elif on and kind != "default_product":
                not_included.append(
                    SourceExplanation(
                        kind,
                        pk,
                        NONE,
                        f"{why}; but product {product!r} does not include this feature",
                        product=product,
                    )
                )
        if not entry["revoked"] and not any(source.effect == GIVES for source in sources):
            # "I pay for a plan, why can't I use this?": the plans in force do not include it.
            sources += not_included
        for grant in (g for g in grants if g.feature_id == feature.pk):
            on = resolver.override_in_force(deleted_at=grant.deleted_at, expires_at=grant.expires_at, now=now)
            why = _override_why(grant.deleted_at, grant.expires_at, grant.reason, on, "ended")
            changes.append(grant.expires_at if on else None)
            if grant.entity:  # an entity's own credits: they give the account nothing
                why, on = f"{grant.entity}'s own credits: {why}", False
            sources.append(
                SourceExplanation("grant", grant.pk, GIVES if on else NONE, why, value=grant.value)
            )
        for revocation in (r for r in revocations if r.feature_id == feature.pk):
            on = resolver.override_in_force(
                deleted_at=revocation.deleted_at, expires_at=revocation.expires_at, now=now
            )
            why = _override_why(revocation.deleted_at, revocation.expires_at, revocation.reason, on, "lifted")
            changes.append(revocation.expires_at if on else None)
            sources.append(SourceExplanation("revocation", revocation.pk, BLOCKS if on else NONE, why))
        for lot in (lot for lot in lots if lot.feature_id == feature.pk):
            # An entity's own lot gives the account nothing (until its removal returns it)
            on = lot.voided_at is None and (lot.expires_at is None or lot.expires_at > now) and not lot.owner
            changes.append(lot.expires_at if on and lot.remaining > 0 else None)
            sources.append(
                SourceExplanation(
                    "credit_lot",
                    lot.pk,
                    GIVES if on and lot.remaining > 0 else NONE,
                    _lot_why(lot, on),
                    value=lot.remaining,
                )
            )
        sources.sort(key=lambda source: _EFFECT_ORDER[source.effect])
        if feature.type == Feature.Type.METERED:
            changes.append(datetime.fromtimestamp(entry["period_end"], UTC))
        explained.append(
            FeatureExplanation(
                key=feature.key,
                name=feature.name,
                type=feature.type,
                allowed=allowed,
                verdict=_verdict(feature, entry, answer, allowed) + _entity_words(customer, entry),
                answer=answer,
                sources=sources,
            )
        )
    upcoming = [moment for moment in changes if moment is not None and moment > now]
    return Explanation(
        customer=customer.external_id,
        now=now,
        next_change=min(upcoming) if upcoming else None,
        past_due_grace=grace,
        features=explained,
    )
