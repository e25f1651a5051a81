"""Margins: what each customer was billed for its usage against what that usage cost the tenant (#54 point 4).

Per usage event (a `usage` or `consume` event; a release gives units back but not the call's cost), recorded in
[start, end):

- **cost**: the `cost_micros` its cost table priced it at (`costs`), in that table's currency;
- **billed**, in micro-units of the billing currency (1 major unit = 1,000,000), two parts:
  - *overage*: what the metered price bills the event's metered units (`quantity − covered`, as the meter reports
    them; an event the meter skipped or gave up on bills nothing), by the price on the subscription that billed
    the usage's period (one ended since keeps its last period), at its amounts now. Each event is billed at the
    margin: the price's amount for the period's metered units up to and including it, less the amount up to the
    one before, in timestamp order — so a graduated price's free tier bills the first events nothing, and the
    events of a period add up to what the price bills for it. A volume price (whose amount may fall as a tier is
    crossed) shares the period's amount so far among its units instead;
  - *credits*: the credits the event burned, at the value the customer paid for them. A purchased lot's credits
    are worth what the payment charged for the purchase's line (its frozen unit amount × quantity; nothing once
    the purchase was taken back by a refund or a lost dispute) over the credits its lots granted; a plan's, the
    period invoice's plan lines (licensed catalog prices, not prorations or usage) over the credits that period
    pays for (a yearly plan's monthly slices all share the year's fee; credits rolled in from the period before
    are not bought with it); a granted (promotional) lot's credits are worth nothing. A consume burns what the
    ledger took under its id; a hold's events (consumes naming it: only Tollgate writes a consume's properties)
    burn their share of what the hold took, at the hold's average value; the units a call used beyond its hold
    (`<hold>.overrun`) burn what they took, and are the call's (its model, no call of their own).

Rows group the events by month (UTC) and currency, and by any of customer, feature and model; a row's
margin is billed − cost in its one currency. Money is never summed across currencies: an event billed in one
currency and priced in another puts its billed money in one row and its cost in another (its calls and units
count where its cost is). Rounding: a credit's value is exact (a fraction); each event's credits money is rounded
half up to the micro-unit once.
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from fractions import Fraction
from typing import Any

from django.db.models import F, Sum

from billing.models import Invoice, Payment, SubscriptionItem
from catalog.models import Feature, Price
from catalog.pricing import price_amount, terms_amount
from core.money import minor_unit_exponent
from costs.pricing import half_up
from customers.models import Customer
from entitlements.models import CreditLedgerEntry, CreditLot, Hold, PlanCreditSlice, Purchase, UsageEvent
from projects.models import Project

GROUPS = ("customer", "feature", "model")
MICROS = 1_000_000
BILLED_BY_METER = (UsageEvent.MeterStatus.PENDING, UsageEvent.MeterStatus.REPORTED)
CHUNK = 10_000
_COUNTED = (UsageEvent.Kind.USAGE, UsageEvent.Kind.CONSUME)
_HOLD_TYPES = (CreditLedgerEntry.Type.HOLD, CreditLedgerEntry.Type.HOLD_RETURN)


@dataclass
class MarginRow:
    """One group's figures; `customer`, `feature` and `model` are None where the report does not group by them
    (`model` "" for events that named none)."""

    period: str
    currency: str
    customer: str | None = None
    feature: str | None = None
    model: str | None = None
    calls: int = 0  # model calls: events, a hold's overrun counted with its call
    units: int = 0
    cost_micros: int = 0
    overage_micros: int = 0
    credits_micros: int = 0
    credits_burned: int = 0
    _key: tuple[str, ...] = field(default=(), repr=False)

    @property
    def billed_micros(self) -> int:
        return self.overage_micros + self.credits_micros

    @property
    def margin_micros(self) -> int:
        return self.billed_micros - self.cost_micros

    @property
    def margin_bps(self) -> int | None:
        """The margin in basis points of what was billed (rounded toward −∞); None when nothing was billed."""
        billed = self.billed_micros
        return None if billed == 0 else (self.margin_micros * 10_000) // billed


@dataclass(frozen=True)
class _Event:
    pk: str
    customer_id: str
    feature_id: str
    event_id: str
    quantity: int
    covered: int
    model: str
    cost: int | None
    cost_currency: str
    metered: bool
    period_start: datetime | None
    timestamp: datetime
    hold: str | None  # the hold whose events these are (a consume naming it)
    properties_hold: str | None  # a recorded event naming a hold as its overrun: the hold, until checked


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    """`values` in lists a query's `IN` takes: PostgreSQL binds at most 65,535 parameters a statement."""
    items = sorted(set(values))
    for offset in range(0, len(items), CHUNK):
        yield items[offset : offset + CHUNK]


def to_micros(minor: int, currency: str) -> int:
    """`minor` units of `currency` in micro-units of its major unit (exact: every exponent is ≤ 6)."""
    return minor * MICROS // int(10 ** minor_unit_exponent(currency))


def _events(project: Project, start: datetime, end: datetime, customer: Customer | None) -> list[_Event]:
    rows = UsageEvent.objects.filter(
        project_id=project.pk, timestamp__gte=start, timestamp__lt=end, kind__in=_COUNTED
    )
    if customer is not None:
        rows = rows.filter(customer_id=customer.pk)
    events = []
    for row in rows.values_list(
        "pk",
        "customer_id",
        "feature_id",
        "event_id",
        "quantity",
        "covered",
        "dimensions",
        "cost_micros",
        "meter_status",
        "period_start",
        "timestamp",
        "properties",
        "kind",
    ).iterator(chunk_size=5000):
        dimensions, properties = row[6] or {}, row[11] or {}
        # Only Tollgate writes a consume's properties: a hold's events (its confirm, a lease's reports) are
        # consumes naming it. A recorded event's `properties` are the tenant's: one naming a hold is a hold's
        # overrun only if its id is the one Tollgate gave it (`_overruns_named`).
        named = properties.get("hold") if isinstance(properties.get("hold"), str) else None
        events.append(
            _Event(
                pk=row[0],
                customer_id=row[1],
                feature_id=row[2],
                event_id=row[3],
                quantity=row[4],
                covered=row[5],
                model=str(dimensions.get("model") or ""),
                cost=row[7],
                cost_currency=str(dimensions.get("currency") or ""),
                metered=row[8] in BILLED_BY_METER and row[4] > row[5],
                period_start=row[9],
                timestamp=row[10],
                # A hold's events burn from what the hold took; its overrun was recorded as usage of its own.
                hold=named if row[12] == UsageEvent.Kind.CONSUME else None,
                properties_hold=named
                if row[12] != UsageEvent.Kind.CONSUME and properties.get("overrun")
                else None,
            )
        )
    events.sort(key=lambda event: (event.timestamp, event.pk))
    return _overruns_named(project, events)


def _overruns_named(project: Project, events: list[_Event]) -> list[_Event]:
    """A confirm's units beyond its hold are recorded as `<Tollgate's hold id>.overrun`, naming the hold, with no
    dimensions of their own: they are the confirmed call's, and take its model. A recorded event that names a hold
    under any other id is the tenant's own."""
    named = {event.properties_hold for event in events if event.properties_hold}
    holds = {
        hold_id: (pk, str(((dimensions or {}).get("confirmed") or {}).get("model") or ""))
        for chunk in _chunks(h for h in named if h)
        for hold_id, pk, dimensions in Hold.objects.filter(
            project_id=project.pk, hold_id__in=chunk
        ).values_list("hold_id", "pk", "dimensions")
    }
    checked = []
    for event in events:
        if event.properties_hold:
            pk, model = holds.get(event.properties_hold, ("", ""))
            if event.event_id == f"{pk}.overrun":
                event = replace(event, model=event.model or model)
            else:
                event = replace(event, properties_hold=None)
        checked.append(event)
    return checked


def _overage(project: Project, events: list[_Event], start: datetime) -> dict[str, tuple[int, str]]:
    """Per metered event's pk, what its price bills it at the margin, in micros, and the price's currency."""
    periods: dict[tuple[str, str, datetime | None], list[_Event]] = defaultdict(list)
    for event in events:
        if event.metered:
            periods[(event.customer_id, event.feature_id, event.period_start)].append(event)
    if not periods:
        return {}
    # The period's metered units recorded before the report's start: the margin of the first event in it.
    starts = [key[2] for key in periods if key[2] is not None]
    earliest = min(starts) if starts else start
    before = {
        (row["customer_id"], row["feature_id"], row["period_start"]): row["units"]
        for chunk in _chunks(key[0] for key in periods)
        for row in UsageEvent.objects.filter(
            project_id=project.pk,
            customer_id__in=chunk,
            feature_id__in={key[1] for key in periods},
            timestamp__gte=earliest,
            timestamp__lt=start,
            kind__in=_COUNTED,
            meter_status__in=BILLED_BY_METER,
        )
        .values("customer_id", "feature_id", "period_start")
        .annotate(units=Sum(F("quantity") - F("covered")))
    }
    terms_of = _period_terms(project, {key[:2] for key in periods})
    billed: dict[str, tuple[int, str]] = {}
    for (customer_id, feature_id, period_start), rows in periods.items():
        terms = _terms_for(terms_of.get((customer_id, feature_id), []), period_start, rows[0].timestamp)
        if terms is None:
            continue  # no subscription of the customer ever billed the feature: nothing to price it by
        units = before.get((customer_id, feature_id, period_start)) or 0
        if terms.get("tiers_mode") == Price.TiersMode.VOLUME:
            # Every unit at the tier the whole quantity reaches: the amount of the period so far, shared by its
            # units (a volume price's amount may fall as a tier is crossed, so a margin could be negative).
            total = units + sum(event.quantity - event.covered for event in rows)
            amount = terms_amount(terms, total)
            shared = amount * units // total if total else 0
            for event in rows:
                units += event.quantity - event.covered
                now = amount * units // total
                billed[event.pk] = (to_micros(now - shared, terms["currency"]), terms["currency"])
                shared = now
            continue
        amount = terms_amount(terms, units)
        for event in rows:
            units += event.quantity - event.covered
            now = terms_amount(terms, units)
            billed[event.pk] = (to_micros(now - amount, terms["currency"]), terms["currency"])
            amount = now
    return billed


_Terms = tuple[datetime, datetime | None, datetime | None, dict[str, Any]]


def _period_terms(project: Project, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], list[_Terms]]:
    """Per (customer, metered feature), the metered prices that bill it on the customer's subscriptions — live or
    ended — newest first: (created, its period's start, end, the price's terms)."""
    features = {feature for _, feature in pairs}
    found: dict[tuple[str, str], list[_Terms]] = defaultdict(list)
    for chunk in _chunks(customer for customer, _ in pairs):
        for item in (
            SubscriptionItem.objects.filter(
                project_id=project.pk,
                subscription__customer_id__in=chunk,
                usage_type=Price.UsageType.METERED,
                price__meter_id__in=features,
            )
            .select_related("price", "subscription")
            .order_by("-subscription__created_at", "-subscription_id")
        ):
            price, subscription = item.price, item.subscription
            key = (subscription.customer_id, str(price.meter_id))
            if key in pairs:
                terms = {
                    "currency": price.currency,
                    "billing_scheme": price.billing_scheme,
                    "unit_amount": price.unit_amount,
                    "tiers_mode": price.tiers_mode,
                    "tiers": price.tiers or [],
                }
                found[key].append(
                    (
                        subscription.created_at,
                        subscription.current_period_start,
                        subscription.current_period_end,
                        terms,
                    )
                )
    return found


def _terms_for(choices: list[_Terms], period_start: datetime | None, at: datetime) -> dict[str, Any] | None:
    """The terms of the subscription whose period is the usage's (a subscription ended since keeps its last), else
    of the newest subscription made before the usage, else of the newest."""
    for _, start, _, terms in choices:
        if period_start is not None and start == period_start:
            return terms
    for _, start, end, terms in choices:
        if start is not None and end is not None and start <= at < end:
            return terms
    for created, _, _, terms in choices:
        if created <= at:
            return terms
    return choices[0][3] if choices else None


def _lot_values(lot_ids: Iterable[str]) -> dict[str, tuple[Fraction, str]]:
    """Per lot, what one of its credits was paid, in micros (exact), and the currency; granted lots: 0, ""."""
    lots = [
        row
        for chunk in _chunks(lot_ids)
        for row in CreditLot.objects.filter(pk__in=chunk).values_list(
            "pk", "source", "purchase_id", "plan_period_id", "plan_period__invoice_id", "project_id"
        )
    ]
    purchases = {row[2] for row in lots if row[2]}
    periods = {row[3] for row in lots if row[3]}
    granted: dict[str, int] = defaultdict(int)  # credits granted per purchase / plan period, all its lots
    for owners, column in ((purchases, "purchase_id"), (periods, "plan_period_id")):
        for chunk in _chunks(owners):
            for owner, amount in (
                CreditLot.objects.filter(**{f"{column}__in": chunk}, slice__isnull=True)
                .values_list(column, "amount")
                .iterator()
            ):
                granted[owner] += amount
    # A period granted on a cadence (a yearly plan's monthly credits) paid for every slice, granted yet or not.
    for chunk in _chunks(periods):
        for period_id, amount in PlanCreditSlice.objects.filter(plan_period_id__in=chunk).values_list(
            "plan_period_id", "amount"
        ):
            granted[period_id] += amount
        # Credits an earlier period rolled into this one's lots were paid with that period: not this fee's.
        for period_id, carried in CreditLedgerEntry.objects.filter(
            lot__plan_period_id__in=chunk, type=CreditLedgerEntry.Type.ROLLOVER, amount__gt=0
        ).values_list("lot__plan_period_id", "amount"):
            granted[period_id] -= carried
    paid = _purchases_paid(purchases)
    invoice_of = {row[3]: row[4] for row in lots if row[3]}
    fees = _plan_fees(project_ids={row[5] for row in lots}, invoice_ids=set(invoice_of.values()))
    for period_id, invoice_id in invoice_of.items():
        paid[period_id] = fees.get(invoice_id, (0, ""))
    values: dict[str, tuple[Fraction, str]] = {}
    for pk, source, purchase_id, period_id, _, _ in lots:
        owner = purchase_id or period_id
        if source == CreditLot.Source.GRANT or owner is None or not granted[owner]:
            values[pk] = (Fraction(0), "")
            continue
        amount, currency = paid[owner]
        values[pk] = (Fraction(to_micros(amount, currency) if currency else 0, granted[owner]), currency)
    return values


def _purchases_paid(purchases: set[str]) -> dict[str, tuple[int, str]]:
    """Per purchase, what its payment charged for its line (the line's unit amount as the payment froze it × its
    quantity, in the payment's currency); a purchase taken back (refunded, a dispute lost) paid nothing."""
    rows = [
        row
        for chunk in _chunks(purchases)
        for row in Purchase.objects.filter(pk__in=chunk).values_list(
            "pk", "payment_id", "line", "quantity", "revoked_at", "price_id", "project_id"
        )
    ]
    payments = {
        pk: (currency, items)
        for chunk in _chunks(row[1] for row in rows)
        for pk, currency, items in Payment.objects.filter(
            project_id__in={row[6] for row in rows}, pk__in=chunk
        ).values_list("pk", "currency", "items")
    }
    paid: dict[str, tuple[int, str]] = {}
    for pk, payment_id, line, quantity, revoked_at, price_id, _ in rows:
        currency, items = payments.get(payment_id, ("", []))
        item = items[line] if 0 <= line < len(items or []) else {}
        unit = item.get("unit_amount")
        if revoked_at is not None or not currency:
            paid[pk] = (0, "")
        elif unit is not None:
            paid[pk] = (int(unit) * quantity, currency)
        else:  # a line priced by tiers: the catalog's price for the quantity
            price = Price.objects.filter(pk=price_id).first()
            paid[pk] = (price_amount(price, quantity), currency) if price else (0, "")
    return paid


def _plan_fees(*, project_ids: set[str], invoice_ids: set[str]) -> dict[str, tuple[int, str]]:
    """Per invoice (Tollgate's id, as plan periods name it), what its plan lines billed for the period ahead (a
    licensed recurring price of the catalog, by its Stripe id now or before an amount change; not prorations, not
    usage, not one-off items), and the invoice's currency."""
    licensed: set[str] = set()
    for stripe_id, history in Price.objects.filter(
        project_id__in=project_ids, type=Price.Type.RECURRING, usage_type=Price.UsageType.LICENSED
    ).values_list("stripe_price_id", "stripe_price_history"):
        licensed.update([stripe_id, *(history or [])])
    fees: dict[str, tuple[int, str]] = {}
    for invoice_id, currency, lines in (
        row
        for chunk in _chunks(invoice_ids)
        for row in Invoice.objects.filter(project_id__in=project_ids, pk__in=chunk).values_list(
            "pk", "currency", "lines"
        )
    ):
        fee = sum(
            int(line.get("amount") or 0)
            for line in lines or []
            if not line.get("proration") and line.get("stripe_price_id") in licensed
        )
        fees[invoice_id] = (fee, currency)
    return fees


def _credits(
    project: Project, events: list[_Event], credit_features: set[str]
) -> dict[str, tuple[int, int, str]]:
    """Per event's pk that burned credits: the credits, their paid value in micros, and its currency.
    `credit_features`: the credits features' ids (a use of one is credits whether or not a waterfall covered it)."""
    consumes = {
        event.event_id
        for event in events
        if event.hold is None and (event.covered or event.feature_id in credit_features)
    }
    holds = {event.hold for event in events if event.hold is not None}
    draws: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: defaultdict(int)
    )  # reference → lot → credits
    references = CreditLedgerEntry.objects.filter(project_id=project.pk)
    for kind, ids, types in (
        ("consume", consumes, [CreditLedgerEntry.Type.CONSUME]),
        ("hold", holds, _HOLD_TYPES),
    ):
        for chunk in _chunks(ids):
            for reference, lot_id, amount in references.filter(
                reference__in=chunk, type__in=types
            ).values_list("reference", "lot_id", "amount"):
                draws[(kind, reference)][lot_id] -= amount
    values = _lot_values({lot for taken in draws.values() for lot in taken})
    waterfalls = {
        hold_id: int(cost or 0)
        for chunk in _chunks(holds)
        for hold_id, paid_with, cost in Hold.objects.filter(
            project_id=project.pk, hold_id__in=chunk
        ).values_list("hold_id", "paid_with_id", "credit_cost")
        if paid_with is not None
    }
    burned: dict[str, tuple[int, int, str]] = {}
    for event in events:
        taken = draws.get(("hold", event.hold) if event.hold is not None else ("consume", event.event_id))
        if not taken:
            continue
        credits = sum(taken.values())
        worth = sum((values[lot][0] * amount for lot, amount in taken.items()), Fraction(0))
        currency = next((values[lot][1] for lot in taken if values[lot][1]), "")
        if event.hold is not None:
            # A waterfall's hold burned the event's covered units at its credits a unit; a hold on a credits
            # feature, the event's units.
            cost = waterfalls.get(event.hold)
            used = event.quantity if cost is None else event.covered * cost
            worth, credits = (worth * used / credits if credits else Fraction(0)), used
        burned[event.pk] = (credits, half_up(worth.numerator, worth.denominator), currency)
    return burned


def margins_report(
    *,
    project: Project,
    start: datetime,
    end: datetime,
    group_by: Sequence[str] = GROUPS,
    customer: Customer | None = None,
) -> list[MarginRow]:
    """The project's margins for the usage recorded in [start, end), least profitable first (the smallest
    margin, then period, currency and the groups' names)."""
    events = _events(project, start, end, customer)
    overage = _overage(project, events, start)
    features = Feature.objects.filter(project_id=project.pk).values_list("pk", "key", "type")
    keys = {pk: key for pk, key, _ in features}
    credits = _credits(project, events, {pk for pk, _, kind in features if kind == Feature.Type.CREDITS})
    names = {
        pk: external_id
        for chunk in _chunks(event.customer_id for event in events)
        for pk, external_id in Customer.objects.filter(pk__in=chunk).values_list("pk", "external_id")
    }
    rows: dict[tuple[str, ...], MarginRow] = {}

    def row(event: _Event, currency: str) -> MarginRow:
        period = event.timestamp.strftime("%Y-%m")
        parts = {
            "customer": names[event.customer_id],
            "feature": keys.get(event.feature_id, ""),
            "model": event.model,
        }
        chosen = {name: (parts[name] if name in group_by else None) for name in GROUPS}
        key = (period, currency, *(str(value) for value in chosen.values()))
        if key not in rows:
            rows[key] = MarginRow(
                period=period,
                currency=currency,
                customer=chosen["customer"],
                feature=chosen["feature"],
                model=chosen["model"],
                _key=key,
            )
        return rows[key]

    for event in events:
        billed = overage.get(event.pk)
        burned = credits.get(event.pk)
        # The event's calls and units count where its cost is, else where its money is.
        home = row(
            event,
            (event.cost_currency if event.cost is not None else "")
            or (billed[1] if billed else "")
            or (burned[2] if burned else ""),
        )
        home.calls += 0 if event.properties_hold and event.hold is None else 1  # an overrun is its call's
        home.units += event.quantity
        if event.cost is not None:
            home.cost_micros += event.cost
        if billed is not None:
            row(event, billed[1]).overage_micros += billed[0]
        if burned is not None:
            target = row(event, burned[2]) if burned[2] else home
            target.credits_burned += burned[0]
            target.credits_micros += burned[1]
    return sorted(rows.values(), key=lambda r: (r.margin_micros, r._key))
