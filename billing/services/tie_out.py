"""The tie-out of a project's money with Stripe's: what Tollgate holds of each money movement (a paid payment's
charge, a refund, its failure, a dispute's withdrawal and reinstatement) against the balance transactions Stripe
counted for it, to the cent, and the period's figures per currency (gross by category, Stripe's fees, the net).

`balance_sync` reads a Stripe account's balance transactions with their sources and keeps those of its projects
(`billing.models.BalanceTransaction`); `tie_out` compares. A movement is compared as a whole, whatever period its
parts fall in (a dispute withdrawn in one month and reinstated in the next): the period chooses which movements
are looked at (those with a balance transaction in it, and Tollgate's own of the period that Stripe has none of),
and the figures add up the period's balance transactions. Currencies are never added together.

Payouts, transfers and Stripe's other balance movements are not a project's money movements: they are not kept.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from billing.models import DISPUTE_HELD_BACK, BalanceTransaction, Payment, Refund
from billing.services.journal import journal_fee
from billing.services.reconciliation_reader import _Reader
from projects.models import Project
from stripe_gateway.gateway import from_timestamp, stripe_id

# The balance transactions of a project's money movements, by Stripe's `type`.
MONEY_TYPES = ("charge", "refund", "refund_failure", "adjustment")
# Of the adjustments, those of disputes (by `reporting_category`).
DISPUTE_CATEGORIES = ("dispute", "dispute_reversal")
# Balance transactions stored per transaction (Stripe's page).
PAGE = 100
# The figures of a period, in the order they are shown.
FIGURES = ("charge", "refund", "refund_failure", "dispute", "dispute_reversal", "fee", "net")


@dataclass(frozen=True)
class Difference:
    """A movement where Tollgate and Stripe disagree: `category` (charge, refund, refund_failure, dispute), the
    Stripe object (`source`: ch_/re_; a dispute's payment intent), and each side's amount as Stripe signs it."""

    currency: str
    category: str
    source: str
    tollgate: int
    stripe: int


@dataclass
class CurrencyTieOut:
    """One currency of a project's period: Stripe's figures (gross by category, fees, net) and the differences."""

    currency: str
    stripe: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    differences: list[Difference] = field(default_factory=list)
    # Every movement compared, equal or not.
    compared: list[Difference] = field(default_factory=list)

    @property
    def tollgate(self) -> dict[str, int]:
        """The period's gross figures as Tollgate holds its movements (Stripe's figures less the differences)."""
        held = {name: self.stripe[name] for name in FIGURES if name not in ("fee", "net")}
        for difference in self.differences:
            held[difference.category] += difference.tollgate - difference.stripe
        return held


def _category(txn: BalanceTransaction) -> str:
    return txn.reporting_category if txn.type == "adjustment" else txn.type


def _owners(txns: list[dict[str, Any]], projects: list[Project]) -> dict[str, Project]:
    """The project of each payment intent these balance transactions' sources name, among `projects` (one query)."""
    intents = {_intent(txn) for txn in txns} - {""}
    return {
        payment.stripe_payment_intent_id: payment.project
        for payment in Payment.objects.filter(project__in=projects, stripe_payment_intent_id__in=intents)
        .select_related("project")
        .only("stripe_payment_intent_id", "project")
    }


def _intent(txn: dict[str, Any]) -> str:
    source = txn.get("source")
    return stripe_id(source.get("payment_intent")) if isinstance(source, dict) else ""


def _owner(txn: dict[str, Any], projects: list[Project], by_intent: dict[str, Project]) -> Project | None:
    """The project (of this account's) whose money a balance transaction moved: the payment's of its source's
    intent, or the project its source names. Money no project knows is nobody's, on a project's own account too
    (the charges of customers an adoption left out, say), as the reconciliation's object checks leave a charge
    alone whose intent no payment has."""
    owner = by_intent.get(_intent(txn))
    if owner is not None:
        return owner
    source = txn.get("source")
    metadata = source.get("metadata") if isinstance(source, dict) else None
    named = metadata.get("tollgate_project") if isinstance(metadata, dict) else None
    return next((project for project in projects if named and project.pk == named), None)


def _fields(txn: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": txn["type"],
        "reporting_category": str(txn.get("reporting_category") or ""),
        "status": str(txn.get("status") or ""),
        "source": stripe_id(txn.get("source")),
        "payment_intent": _intent(txn),
        "currency": str(txn.get("currency") or ""),
        "amount": int(txn.get("amount") or 0),
        "fee": int(txn.get("fee") or 0),
        "net": int(txn.get("net") or 0),
        "fee_details": txn.get("fee_details") or [],
        "description": str(txn.get("description") or "")[:500],
        "created_at": from_timestamp(txn.get("created")),
        "available_on": from_timestamp(txn.get("available_on")),
    }


def _store_page(txns: list[dict[str, Any]], projects: list[Project]) -> int:
    """Stores a page of balance transactions in one transaction: the new ones inserted, those whose fields Stripe
    moved (a status) updated, the others left alone; the fee of each one written is posted to the journal, under
    the rows' locks. Returns how many of the page are the projects'."""
    by_intent = _owners(txns, projects)
    owned = [(txn, owner) for txn in txns if (owner := _owner(txn, projects, by_intent)) is not None]
    if not owned:
        return 0
    with transaction.atomic():
        kept = {
            row.stripe_balance_transaction_id: row
            for row in BalanceTransaction.objects.select_for_update().filter(
                project__in=projects, stripe_balance_transaction_id__in=[txn["id"] for txn, _ in owned]
            )
        }
        written = []
        for txn, owner in owned:
            fields = _fields(txn)
            row = kept.get(txn["id"])
            if row is None:
                try:
                    with transaction.atomic():
                        row = BalanceTransaction.objects.create(
                            project=owner, stripe_balance_transaction_id=txn["id"], **fields
                        )
                    written.append(row)
                    continue
                except (
                    IntegrityError
                ):  # another sync stored it meanwhile: its row, under its lock, as any other
                    row = BalanceTransaction.objects.select_for_update().get(
                        project__in=projects, stripe_balance_transaction_id=txn["id"]
                    )
            if any(getattr(row, name) != value for name, value in fields.items()):
                for name, value in fields.items():
                    setattr(row, name, value)
                row.save()
            else:
                continue
            written.append(row)
        for row in written:
            if row.fee:
                journal_fee(row)  # its fee: posted once, under the row's lock (or its insert)
    return len(owned)


def balance_sync(reader: _Reader, projects: list[Project], *, since: datetime | None = None) -> int:
    """Reads one Stripe account's balance transactions (created since `since`; all without) with their sources,
    and stores those of its `projects`, updating what Stripe moved, a page at a time. Returns how many are the
    projects'."""
    params: dict[str, Any] = {"expand": ["data.source"]}
    if since is not None:
        params["created"] = {"gte": int(since.timestamp())}
    stored = 0
    page: list[dict[str, Any]] = []
    for txn in reader.each("balance_transactions", params):
        if txn.get("type") not in MONEY_TYPES:
            continue
        if txn["type"] == "adjustment" and txn.get("reporting_category") not in DISPUTE_CATEGORIES:
            continue
        page.append(txn)
        if len(page) == PAGE:
            stored += _store_page(page, projects)
            page = []
    return stored + (_store_page(page, projects) if page else 0)


def _expected_by_source(project: Project, txns: Iterable[BalanceTransaction]) -> dict[tuple[str, str], int]:
    """Tollgate's amount, as Stripe would sign it, for each (category, source) of these balance transactions;
    a dispute's movements are keyed by their payment intent (the withdrawal and the reinstatement together)."""
    keys = {
        (_category(t), t.payment_intent if _category(t) in DISPUTE_CATEGORIES else t.source) for t in txns
    }
    intents = {t.payment_intent for t in txns if t.payment_intent}
    refund_ids = {source for category, source in keys if category in ("refund", "refund_failure")}
    payments = {
        p.stripe_payment_intent_id: p
        for p in Payment.objects.filter(project=project, stripe_payment_intent_id__in=intents).only(
            "stripe_payment_intent_id", "amount", "status", "dispute_status", "dispute_amount"
        )
    }
    refunds = {
        r.stripe_refund_id: r
        for r in Refund.objects.filter(project=project, stripe_refund_id__in=refund_ids).only(
            "stripe_refund_id", "amount", "status"
        )
    }
    charges = {
        t.source: t.payment_intent for t in txns if _category(t) == "charge"
    }  # a charge's source is ch_: its payment is found by the intent
    expected: dict[tuple[str, str], int] = {}
    for category, source in keys:
        if category == "charge":
            payment = payments.get(charges.get(source, ""))
            paid = payment is not None and payment.status in Payment.PAID_STATUSES
            expected[(category, source)] = payment.amount if paid and payment is not None else 0
        elif category in ("refund", "refund_failure"):
            refund = refunds.get(source)
            counted = (*Refund.COUNTED_STATUSES, Refund.Status.FAILED)
            if refund is None:
                expected[(category, source)] = 0
            elif category == "refund":
                expected[(category, source)] = -refund.amount if refund.status in counted else 0
            else:
                expected[(category, source)] = refund.amount if refund.status == Refund.Status.FAILED else 0
        elif category in DISPUTE_CATEGORIES:
            payment = payments.get(source)
            held = payment is not None and payment.dispute_status in DISPUTE_HELD_BACK
            expected[("dispute", source)] = -payment.dispute_amount if held and payment is not None else 0
    return expected


def tie_out(project: Project, *, start: datetime, end: datetime) -> dict[str, CurrencyTieOut]:
    """The project's money of [start, end) against Stripe's balance transactions kept for it, per currency."""
    kept = BalanceTransaction.objects.defer("fee_details", "description")
    in_period = list(kept.filter(project=project, created_at__gte=start, created_at__lt=end))
    results: dict[str, CurrencyTieOut] = {}
    for txn in in_period:
        figures = results.setdefault(txn.currency, CurrencyTieOut(txn.currency)).stripe
        figures[_category(txn)] += txn.amount
        figures["fee"] += txn.fee
        figures["net"] += txn.net
    # Each movement seen in the period, compared as a whole: all of its balance transactions, whenever.
    sources = {t.source for t in in_period if _category(t) not in DISPUTE_CATEGORIES}
    intents = {t.payment_intent for t in in_period if _category(t) in DISPUTE_CATEGORIES}
    whole = list(
        kept.filter(project=project, source__in=sources)
        | kept.filter(project=project, payment_intent__in=intents, reporting_category__in=DISPUTE_CATEGORIES)
    )
    at_stripe: dict[tuple[str, str], int] = defaultdict(int)
    currency_of: dict[tuple[str, str], str] = {}
    for txn in whole:
        category = _category(txn)
        key = ("dispute", txn.payment_intent) if category in DISPUTE_CATEGORIES else (category, txn.source)
        at_stripe[key] += txn.amount
        currency_of[key] = txn.currency
    seen = [
        Difference(currency_of[key], key[0], key[1], held, at_stripe[key])
        for key, held in sorted(_expected_by_source(project, whole).items())
    ]
    for movement in [*seen, *_unseen_at_stripe(project, start=start, end=end)]:
        result = results.setdefault(movement.currency, CurrencyTieOut(movement.currency))
        result.compared.append(movement)
        if movement.tollgate != movement.stripe:
            result.differences.append(movement)
    return dict(sorted(results.items()))


def _unseen_at_stripe(project: Project, *, start: datetime, end: datetime) -> list[Difference]:
    """Tollgate's movements of the period (by its own times) of which Stripe has no balance transaction: a paid
    payment's charge, a refund Stripe made (failed ones included: the refund moved money first), a dispute's
    withdrawal."""
    known = BalanceTransaction.objects.filter(project=project)
    charged = set(known.filter(type="charge").values_list("payment_intent", flat=True))
    refunded = set(known.filter(type="refund").values_list("source", flat=True))
    failed = set(known.filter(type="refund_failure").values_list("source", flat=True))
    disputed = set(known.filter(reporting_category="dispute").values_list("payment_intent", flat=True))
    missing: list[Difference] = []
    payments = Payment.objects.filter(
        project=project,
        status__in=Payment.PAID_STATUSES,
        succeeded_at__gte=start,
        succeeded_at__lt=end,
        amount__gt=0,
    ).exclude(stripe_payment_intent_id="")
    for payment in payments.order_by("succeeded_at", "id"):
        intent = payment.stripe_payment_intent_id
        if intent not in charged:
            missing.append(Difference(payment.currency, "charge", intent, payment.amount, 0))
        if payment.dispute_status in DISPUTE_HELD_BACK and intent not in disputed:
            missing.append(Difference(payment.currency, "dispute", intent, -payment.dispute_amount, 0))
    refunds = Refund.objects.filter(
        project=project,
        status__in=(*Refund.COUNTED_STATUSES, Refund.Status.FAILED),
        created_at__gte=start,
        created_at__lt=end,
    ).exclude(stripe_refund_id="")
    for refund in refunds.order_by("created_at", "id"):
        if refund.stripe_refund_id not in refunded:
            missing.append(Difference(refund.currency, "refund", refund.stripe_refund_id, -refund.amount, 0))
        if refund.status == Refund.Status.FAILED and refund.stripe_refund_id not in failed:
            missing.append(
                Difference(refund.currency, "refund_failure", refund.stripe_refund_id, refund.amount, 0)
            )
    return missing
