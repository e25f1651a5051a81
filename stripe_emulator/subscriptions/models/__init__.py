"""Subscriptions and subscription items: creation, updates with prorations, pending updates, cancellation,
pause/resume, and everything time does to them (renewals, trial ends, dunning, expiry), driven by the
advance hook :func:`run_billing`.

Statuses follow Stripe: ``incomplete`` (first payment failed or needs action) → ``active`` when paid, or
``incomplete_expired`` after 23 h; ``trialing`` → ``active`` at trial end (or ``paused``/``canceled`` per
``trial_settings`` when there is no payment method); a failed renewal → ``past_due`` → Smart Retries →
``canceled`` / ``unpaid`` / left ``past_due`` (per account setting, see
:mod:`stripe_emulator.subscriptions.settings`).

Billing periods live on the items (``current_period_start``/``current_period_end``); all items of a
subscription share one interval and one period. Events are emitted once per operation: a whole create,
update or renewal changes the subscription under :meth:`SubscriptionsBackend._operation`, and one
``customer.subscription.created|updated|deleted`` (plus ``paused``/``resumed``) carries the end state.

The backend is composed from one class per concern, as moto composes ``EC2Backend``; only
:class:`SubscriptionsBackend` is ever passed to ``account.backend()``:

* :mod:`.base` — constants, price helpers, lookups, validation, event grouping, collect/end;
* :mod:`.items` — listing, item rows, the lines they bill, starting a paid period, the final invoice;
* :mod:`.proration` — item changes, prorations, pending updates;
* :mod:`.create`, :mod:`.updates` — ``POST /v1/subscriptions`` and ``POST /v1/subscriptions/{id}``;
* :mod:`.lifecycle` — cancel/resume, invoice outcomes, the time-driven steps;
* :mod:`.preview` — ``invoices/create_preview``: a change's invoice by a dry run of the change.
"""

from __future__ import annotations

from stripe_emulator.core.account import Account
from stripe_emulator.core.store import StripeObject
from stripe_emulator.subscriptions.invoices import InvoicesBackend
from stripe_emulator.subscriptions.models.create import SubscriptionCreate
from stripe_emulator.subscriptions.models.lifecycle import SubscriptionLifecycle
from stripe_emulator.subscriptions.models.preview import SubscriptionPreview
from stripe_emulator.subscriptions.models.updates import SubscriptionUpdates


class SubscriptionsBackend(
    SubscriptionCreate, SubscriptionUpdates, SubscriptionLifecycle, SubscriptionPreview
):
    """Subscriptions and subscription items on one account."""


def run_billing(account: Account, previous_now: int, now: int) -> None:
    """The advance hook: every renewal, trial end, retry and expiry due by ``now``, one at a time in time
    order (so a jump over several periods bills each one, and a retry lands between the renewals around
    it)."""
    # Schedules sit on top of subscriptions (they drive them): imported here, where both exist.
    from stripe_emulator.subscriptions.schedules import schedule_run, schedule_tasks

    subs = account.backend(SubscriptionsBackend)
    invoices = account.backend(InvoicesBackend)
    for _ in range(100_000):
        tasks: list[tuple[int, int, int, str, StripeObject]] = [
            (when, prio, obj["_seq"], kind, obj) for when, prio, kind, obj in subs.due_tasks(now)
        ]
        tasks += [(when, 7, inv["_seq"], "retry", inv) for when, inv in invoices.due_retries(now)]
        # A phase ending with the period moves the subscription to the next phase before it renews (6).
        tasks += [(when, 5, sched["_seq"], "phase", sched) for when, sched in schedule_tasks(account, now)]
        if not tasks:
            return
        when, _, _, kind, obj = min(tasks, key=lambda t: t[:3])
        if kind == "retry":
            invoices.retry(obj, when)
        elif kind == "phase":
            schedule_run(account, obj, when)
        else:
            subs.run_task(kind, obj, when)


__all__ = ["SubscriptionsBackend", "run_billing"]
