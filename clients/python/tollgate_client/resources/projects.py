"""The caller's project (project key), all projects (platform key), and metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tollgate_client._transport import Transport
from tollgate_client.pagination import Page
from tollgate_client.resources._base import Resource, compact, path
from tollgate_client.types import (
    AdoptionRun,
    ApiKey,
    Project,
    RevenueMetrics,
    RevenueRecognition,
    SubscriptionMetrics,
)


class OwnApiKeys(Resource):
    """Rotating the project's keys: create a new one, deploy it, revoke the old one."""

    def create(self, *, name: str | None = None, idempotency_key: str | None = None) -> ApiKey:
        """The answer's `api_key` is the secret, shown this once."""
        return self._post(ApiKey, "/project/api_keys", compact(name=name), idempotency_key=idempotency_key)

    def list(self, *, limit: int | None = None, starting_after: str | None = None) -> Page[ApiKey]:
        return self._list(ApiKey, "/project/api_keys", {"limit": limit, "starting_after": starting_after})

    def revoke(self, key_id: str, *, idempotency_key: str | None = None) -> None:
        self._delete(path("/project/api_keys/{}", key_id), idempotency_key=idempotency_key)


class CurrentProject(Resource):
    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        self.api_keys = OwnApiKeys(transport)

    def retrieve(self) -> Project:
        """The caller's project and its settings (never its secrets)."""
        return self._get(Project, "/project")


class ProjectApiKeys(Resource):
    def create(self, project: str, *, name: str | None = None, idempotency_key: str | None = None) -> ApiKey:
        url = path("/projects/{}/api_keys", project)
        return self._post(ApiKey, url, compact(name=name), idempotency_key=idempotency_key)

    def list(
        self, project: str, *, limit: int | None = None, starting_after: str | None = None
    ) -> Page[ApiKey]:
        url = path("/projects/{}/api_keys", project)
        return self._list(ApiKey, url, {"limit": limit, "starting_after": starting_after})

    def revoke(self, project: str, key_id: str, *, idempotency_key: str | None = None) -> None:
        self._delete(path("/projects/{}/api_keys/{}", project, key_id), idempotency_key=idempotency_key)


class ProjectAdoptions(Resource):
    """Adopting a project's existing Stripe account: its customers, catalog, subscriptions and invoices
    mirrored into the project (nothing is written to Stripe). A run is queued and answered `pending`; read it
    back until its `status` is `completed` or `failed`, then its `report`."""

    def create(
        self,
        project: str,
        *,
        customer_key: Mapping[str, str],
        mapping: Mapping[str, Any],
        dry_run: bool | None = None,
        idempotency_key: str | None = None,
    ) -> AdoptionRun:
        """`customer_key`: where a Stripe customer's external id is, `{"metadata": "user_id"}` or `{"field":
        "email" | "id"}`. `mapping`: `features` to create, `products` (each `{stripe_product, key, features}`)
        and `meters` (Stripe billing meter id → metered feature key). `dry_run`: read and report only.
        `ConflictError` (`adoption_running`) while another adoption of the project runs."""
        body = compact(dry_run=dry_run, customer_key=dict(customer_key), mapping=dict(mapping))
        url = path("/projects/{}/adoptions", project)
        return self._post(AdoptionRun, url, body, idempotency_key=idempotency_key)

    def retrieve(self, project: str, run_id: str) -> AdoptionRun:
        """The run with its adoption point and, once it ended, its report."""
        return self._get(AdoptionRun, path("/projects/{}/adoptions/{}", project, run_id))


class Projects(Resource):
    """Operators' automation, with a platform key: a project key gets `PermissionDeniedError`."""

    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        self.api_keys = ProjectApiKeys(transport)
        self.adoptions = ProjectAdoptions(transport)

    def create(
        self,
        *,
        slug: str,
        name: str,
        default_currency: str | None = None,
        allowed_redirect_hosts: Sequence[str] | None = None,
        payment_ttl_seconds: int | None = None,
        default_flow: str | None = None,
        default_product: str | None = None,
        stripe_secret_key: str | None = None,
        stripe_publishable_key: str | None = None,
        stripe_webhook_secret: str | None = None,
        proration_upgrade: str | None = None,
        proration_downgrade: str | None = None,
        proration_interval_change: str | None = None,
        margin_alert_below_bps: int | None = None,
        first_invoice_void_ends_subscription: bool | None = None,
        idempotency_key: str | None = None,
    ) -> Project:
        """The answer's `api_key` is the project's first secret key, shown this once. Proration rules
        (`now_prorate`, the default; `now_no_proration`; `period_end`) decide what a subscription change does,
        per direction. `margin_alert_below_bps`: the margin, in basis points of what a customer was billed, below
        which the project hears `customer.margin_low` (2000 = 20 %; −1,000,000 to 10,000).
        `first_invoice_void_ends_subscription`: a subscription whose first invoice is voided unpaid is canceled
        at once (off by default: it runs on, as Stripe leaves it)."""
        body = compact(
            slug=slug,
            name=name,
            default_currency=default_currency,
            allowed_redirect_hosts=list(allowed_redirect_hosts)
            if allowed_redirect_hosts is not None
            else None,
            payment_ttl_seconds=payment_ttl_seconds,
            default_flow=default_flow,
            default_product=default_product,
            stripe_secret_key=stripe_secret_key,
            stripe_publishable_key=stripe_publishable_key,
            stripe_webhook_secret=stripe_webhook_secret,
            proration_upgrade=proration_upgrade,
            proration_downgrade=proration_downgrade,
            proration_interval_change=proration_interval_change,
            margin_alert_below_bps=margin_alert_below_bps,
            first_invoice_void_ends_subscription=first_invoice_void_ends_subscription,
        )
        return self._post(Project, "/projects", body, idempotency_key=idempotency_key)

    def retrieve(self, project: str) -> Project:
        """`project`: its id or slug."""
        return self._get(Project, path("/projects/{}", project))

    def update(
        self,
        project: str,
        *,
        name: str | None = None,
        status: str | None = None,
        default_currency: str | None = None,
        allowed_redirect_hosts: Sequence[str] | None = None,
        payment_ttl_seconds: int | None = None,
        default_flow: str | None = None,
        default_product: str | None = None,
        proration_upgrade: str | None = None,
        proration_downgrade: str | None = None,
        proration_interval_change: str | None = None,
        margin_alert_below_bps: int | None = None,
        clear_margin_alert: bool = False,
        first_invoice_void_ends_subscription: bool | None = None,
        idempotency_key: str | None = None,
    ) -> Project:
        """`status`: `active` or `suspended`. `proration_upgrade` / `proration_downgrade` /
        `proration_interval_change`: `now_prorate` | `now_no_proration` | `period_end`.
        `margin_alert_below_bps`: as `create`'s; `clear_margin_alert=True` stops the alerts (sends null).
        `first_invoice_void_ends_subscription`: as `create`'s."""
        body = compact(
            name=name,
            status=status,
            default_currency=default_currency,
            allowed_redirect_hosts=list(allowed_redirect_hosts)
            if allowed_redirect_hosts is not None
            else None,
            payment_ttl_seconds=payment_ttl_seconds,
            default_flow=default_flow,
            default_product=default_product,
            proration_upgrade=proration_upgrade,
            proration_downgrade=proration_downgrade,
            proration_interval_change=proration_interval_change,
            margin_alert_below_bps=margin_alert_below_bps,
            first_invoice_void_ends_subscription=first_invoice_void_ends_subscription,
        )
        if clear_margin_alert:
            body["margin_alert_below_bps"] = None
        return self._patch(Project, path("/projects/{}", project), body, idempotency_key=idempotency_key)

    def list(self, *, limit: int | None = None, starting_after: str | None = None) -> Page[Project]:
        return self._list(Project, "/projects", {"limit": limit, "starting_after": starting_after})


class Metrics(Resource):
    def subscriptions(self) -> SubscriptionMetrics:
        """Subscription counts by status and by product."""
        return self._get(SubscriptionMetrics, "/metrics/subscriptions")

    def revenue(
        self, *, start: str | None = None, end: str | None = None, interval: str | None = None
    ) -> RevenueMetrics:
        """Revenue, refunds and net per period and currency, and MRR (`?from=&to=&interval=month|day`)."""
        return self._get(RevenueMetrics, "/metrics/revenue", {"from": start, "to": end, "interval": interval})

    def revenue_recognition(
        self, *, month: str | None = None, months: int | None = None
    ) -> RevenueRecognition:
        """Revenue billed, given back and recognised per month, currency and product, with the deferred
        revenue and the prepaid credits' liability (`deferred`, `credits`), oldest month first
        (`?month=YYYY-MM&months=N`): `months` months (1–24, default 1) ending with `month` (UTC, default this
        month)."""
        return self._get(
            RevenueRecognition, "/metrics/revenue_recognition", {"month": month, "months": months}
        )
