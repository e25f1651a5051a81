"""The :class:`Emulator`: accounts keyed by secret key, the clock, the service registry, the webhook
dispatcher, and :meth:`Emulator.handle`, the single entry point both the HTTP server and the in-process SDK
client call with a raw request.

``handle`` owns the cross-cutting wire behaviour — authentication, param decoding, idempotency replay,
error rendering, response headers — so handlers only see a parsed :class:`~.routing.Request`.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from email.utils import formatdate
from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.account import Account
from stripe_emulator.core.clock import Clock
from stripe_emulator.core.context import RequestContext, request_scope, test_clock_scope
from stripe_emulator.core.errors import (
    APIError,
    AuthenticationError,
    InvalidRequestError,
    ParameterMissing,
    ResourceMissing,
    StripeError,
)
from stripe_emulator.core.idempotency import SavedResponse, fingerprint
from stripe_emulator.core.params import Params, decode_body, decode_form
from stripe_emulator.core.routing import Request, Response, Route
from stripe_emulator.core.service import AdvanceHook, Registry, Service
from stripe_emulator.core.store import StripeObject
from stripe_emulator.core.version import API_VERSION
from stripe_emulator.core.webhooks import (
    DEFAULT_RETRY_DELAYS,
    DeliveryAttempt,
    Sender,
    WebhookDispatcher,
    WebhookMode,
)

logger = logging.getLogger(__name__)

_KEY_RE = re.compile(r"^(sk|rk)_test_[A-Za-z0-9_]+$")
_PUBLISHABLE_RE = re.compile(r"^pk_test_[A-Za-z0-9_]+$")
_PUBLISHABLE_REFUSED = (
    "This API call cannot be made with a publishable API key. Please use a secret API key. You can find a list "
    "of your API keys at https://dashboard.stripe.com/account/apikeys."
)
_INTENT_NAMES = {"payment_intent": "PaymentIntent", "setup_intent": "SetupIntent"}
STATE_VERSION = 1
# The base of hosted URLs when nobody can open them: an in-process emulator not served over HTTP.
DEFAULT_BASE_URL = "http://stripe-emulator.invalid"
# The paths the emulator renders absolute URLs for (hosted pages, 3-D Secure challenges); only strings under
# these are rebased when the public URL changes, never a tenant's own URLs.
HOSTED_PATHS = ("/checkout/pay/", "/invoices/", "/portal/", "/_emulator/")


class Emulator:
    """A whole emulated Stripe. Thread-safe: one re-entrant lock per account serialises that account's
    requests; locks are never held while webhooks are sent.

    ``clock`` is a callable returning Unix seconds (default: ``time.time`` read at call time);
    ``advance(seconds)`` adds to it. Webhook options are documented on
    :class:`~stripe_emulator.core.webhooks.WebhookDispatcher`.

    ``account_api_version`` is the default API version of every account (an old one emulates an account opened
    long ago: events are created at it); ``POST /_emulator/account/api_version`` sets one account's.

    ``public_url`` is the base of every URL the emulator renders (Checkout ``url``, ``hosted_invoice_url``,
    ``invoice_pdf``, portal ``url``, 3-D Secure ``redirect_to_url.url``); serving it over HTTP sets it to the
    address it listens on unless one was given. Without it: ``http://stripe-emulator.invalid``.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] | None = None,
        services: Sequence[Service] | None = None,
        webhook_mode: WebhookMode = "background",
        webhook_sender: Sender | None = None,
        webhook_retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        webhook_duplicates: bool = False,
        webhook_shuffle: bool = False,
        webhook_seed: int | None = None,
        webhook_signature_clock: Callable[[], float] | None = None,
        data_path: str | None = None,
        public_url: str | None = None,
        account_api_version: str | None = None,
    ) -> None:
        if services is None:
            from stripe_emulator.services import SERVICES  # the default set; imported late to avoid a cycle

            services = SERVICES
        self.clock = Clock(clock)
        # The default API version of the accounts created from now on (None: the current one).
        self.account_api_version = account_api_version
        self.registry = Registry(services)
        self.accounts: dict[str, Account] = {}
        self.webhooks = WebhookDispatcher(
            self,
            mode=webhook_mode,
            sender=webhook_sender,
            retry_delays=webhook_retry_delays,
            duplicates=webhook_duplicates,
            shuffle=webhook_shuffle,
            seed=webhook_seed,
            signature_clock=webhook_signature_clock,
        )
        self._advance_hooks: list[AdvanceHook] = list(self.registry.advance_hooks)
        self._lock = threading.RLock()
        self._public_url = public_url.rstrip("/") if public_url else None
        # The base the stored objects' URLs were rendered with (state files remember theirs).
        self._rendered_base = self.base_url
        self.data_path = data_path
        if data_path and os.path.exists(data_path):
            self.load(data_path)

    # -- accounts ------------------------------------------------------------------------------------------

    def account(self, api_key: str) -> Account:
        """The account of a secret key, created on first use (any well-formed ``sk_test_…`` is valid)."""
        if not _KEY_RE.match(api_key):
            raise AuthenticationError(f"Invalid API Key provided: {_redact(api_key)}")
        with self._lock:
            account = self.accounts.get(api_key)
            if account is None:
                account = Account(self, api_key)
                self.accounts[api_key] = account
            return account

    def locate(self, object_id: str) -> tuple[Account, StripeObject] | None:
        """The account holding ``object_id`` and the object. For routes that carry no API key (hosted
        Checkout and portal pages, ``/_emulator/checkout/sessions/{id}/complete``): ids are random, so at
        most one account holds a given id."""
        with self._lock:
            accounts = list(self.accounts.values())
        for account in accounts:
            obj = account.store.find(object_id)
            if obj is not None:
                return account, obj
        return None

    # -- public URLs ---------------------------------------------------------------------------------------

    @property
    def public_url(self) -> str | None:
        return self._public_url

    @property
    def base_url(self) -> str:
        return self._public_url or DEFAULT_BASE_URL

    def url_for(self, path: str) -> str:
        """The absolute URL of one of the emulator's own pages: ``/invoices/in_1`` → ``{base}/invoices/in_1``."""
        return f"{self.base_url}{path}"

    def set_public_url(self, url: str) -> None:
        """Serve hosted pages from ``url`` from now on; URLs already stored (an earlier run's ``--data``, objects
        created before the server started) are rebased onto it, so every resource shows the same base."""
        with self._lock:
            self._public_url = url.rstrip("/")
        self._rebase()

    def _rebase(self) -> None:
        old, new = self._rendered_base, self.base_url
        if old == new:
            return
        prefixes = tuple(old + path for path in HOSTED_PATHS)

        def rewrite(value: Any) -> Any:
            if isinstance(value, str):
                return new + value[len(old) :] if value.startswith(prefixes) else value
            if isinstance(value, dict):
                for key, item in value.items():
                    value[key] = rewrite(item)
            elif isinstance(value, list):
                value[:] = [rewrite(item) for item in value]
            return value

        with self._lock:
            accounts = list(self.accounts.values())
        for account in accounts:
            with account.lock:
                for obj in account.store.objects():
                    rewrite(obj)
        self._rendered_base = new
        self._save_if_persistent()

    # -- extension points ----------------------------------------------------------------------------------

    def add_route(self, route: Route) -> None:
        """Register a route on this instance only (services register theirs in their ``urls.py``)."""
        self.registry.router.add(route)

    def on_advance(self, hook: AdvanceHook) -> None:
        self._advance_hooks.append(hook)

    # -- test controls -------------------------------------------------------------------------------------

    def advance(self, seconds: float) -> int:
        """Move the clock forward and run the advance hooks for every account. Returns the new now."""
        with self._lock:
            previous = self.clock.now()
            now = self.clock.advance(seconds)
            accounts = list(self.accounts.values())
        for account in accounts:
            with self._collect_deliveries() as context, account.lock:
                self.run_advance_hooks(account, previous, now)
            self.webhooks.enqueue(context.outbox)
        self._save_if_persistent()
        return now

    def run_advance_hooks(self, account: Account, previous: int, now: int) -> None:
        """Every advance hook for one account, the caller holding its lock: the emulator's ``advance``, and a
        test clock's advance (under that clock's scope, so only its customers' objects move)."""
        for hook in self._advance_hooks:
            hook(account, previous, now)

    def reset(self) -> None:
        """Forget every account, object, event, endpoint and queued delivery, and the clock offset."""
        with self._lock:
            self.accounts.clear()
            self.webhooks.clear()
            self.clock.reset()
        self._save_if_persistent()

    def flush_webhooks(self) -> list[DeliveryAttempt]:
        return self.webhooks.flush()

    def wait_for_webhooks(self, timeout: float = 5.0) -> bool:
        return self.webhooks.wait_idle(timeout)

    def close(self) -> None:
        self.webhooks.close()
        self._save_if_persistent()

    @contextmanager
    def _collect_deliveries(self) -> Iterator[RequestContext]:
        with request_scope(RequestContext()) as context:
            yield context

    # -- requests ------------------------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Serve one raw HTTP request. Never raises: every failure becomes a Stripe error response."""
        method = method.upper()
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        request_id = ids.new_id("req", 14)
        idempotency_key = lowered.get("idempotency-key") if method == "POST" else None
        context = RequestContext(request_id=request_id, idempotency_key=idempotency_key)
        mutated = False
        try:
            route, path_params = self.registry.router.match(method, path)
            account, publishable = self._authenticate(lowered) if route.auth else (None, False)
            params = decode_form(query) if query else {}
            if method == "POST":
                params.update(decode_body(body, lowered.get("content-type")))
            if publishable and account is not None:
                _check_publishable(route, account, path_params, params)
            request = Request(self, method, path, path_params, Params(params), lowered, request_id, account)
            with request_scope(context):
                response = self._dispatch(route, request, idempotency_key)
            mutated = method != "GET" and response.status < 400
        except StripeError as exc:
            response = _error_response(exc)
            mutated = method != "GET" and exc.status == 402  # a decline changes state too
        except Exception as exc:
            logger.exception("stripe emulator bug on %s %s", method, path)
            response = _error_response(APIError(f"Emulator error: {type(exc).__name__}: {exc}"))
        # Deliveries are released only now, when the response exists (see core.context).
        self.webhooks.enqueue(context.outbox)
        response.headers.setdefault("Request-Id", request_id)
        # Stripe's own time (the emulator's clock, which tests and demos move), as every Stripe answer carries it.
        response.headers["Date"] = formatdate(self.clock.now(), usegmt=True)
        response.headers.setdefault("Content-Type", "application/json")  # HTML for hosted pages
        response.headers["Stripe-Version"] = lowered.get("stripe-version", API_VERSION)
        if idempotency_key:
            response.headers["Idempotency-Key"] = idempotency_key
        if mutated:
            self._save_if_persistent()
        return response

    def _authenticate(self, headers: Mapping[str, str]) -> tuple[Account, bool]:
        """The account of the request's key, and whether the key is a publishable one (``pk_test_<x>``: the
        account of ``sk_test_<x>``, as a Stripe account's two keys are one pair)."""
        auth = headers.get("authorization", "")
        scheme, _, credential = auth.partition(" ")
        if scheme.lower() == "basic":  # ``curl -u sk_test_…:``
            credential = base64.b64decode(credential).decode(errors="replace").partition(":")[0]
        elif scheme.lower() != "bearer":
            credential = ""
        credential = credential.strip()
        if not credential:
            raise AuthenticationError(
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#"
                "authentication for details, or we can help at https://support.stripe.com/."
            )
        if _PUBLISHABLE_RE.match(credential):
            return self.account("sk_test_" + credential.removeprefix("pk_test_")), True
        return self.account(credential), False

    def _dispatch(self, route: Route, request: Request, idempotency_key: str | None) -> Response:
        account = request.account_or_none
        if account is None:
            return route.handler(request)
        with account.lock:
            if idempotency_key is None:
                return _run(route, request)
            print_ = fingerprint(request.method, request.path, request.params.data)
            saved = account.idempotency.lookup(idempotency_key, print_, account.now())
            if saved is not None:
                headers = {"Idempotent-Replayed": "true", "Request-Id": saved.request_id}
                return Response(saved.status, saved.body.encode(), headers)
            try:
                response = _run(route, request)
            except StripeError as exc:
                if exc.replayable:
                    failed = _error_response(exc)
                    account.idempotency.save(
                        idempotency_key,
                        SavedResponse(
                            print_, failed.status, failed.body.decode(), request.request_id, account.now()
                        ),
                    )
                raise
            if response.status < 400:
                account.idempotency.save(
                    idempotency_key,
                    SavedResponse(
                        print_, response.status, response.body.decode(), request.request_id, account.now()
                    ),
                )
            return response

    # -- persistence ---------------------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        with self._lock:
            accounts = dict(self.accounts)
            offset = self.clock.offset
        dumped = {}
        for key, account in accounts.items():
            with account.lock:
                dumped[key] = json.loads(json.dumps(account.dump()))  # a copy, consistent under the lock
        return {
            "version": STATE_VERSION,
            "clock_offset": offset,
            "base_url": self._rendered_base,
            "accounts": dumped,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        with self._lock:
            self.accounts = {
                key: Account.load(self, key, data) for key, data in state.get("accounts", {}).items()
            }
            self.clock.set_offset(float(state.get("clock_offset", 0.0)))
            # State saved before the base was recorded holds the in-process default.
            self._rendered_base = str(state.get("base_url") or DEFAULT_BASE_URL)
        self._rebase()

    def save(self, path: str) -> None:
        state = self.dump()
        directory = os.path.dirname(os.path.abspath(path))
        # Write-then-rename so a crash mid-save never leaves a truncated state file.
        with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as handle:
            json.dump(state, handle)
        os.replace(handle.name, path)

    def load(self, path: str) -> None:
        with open(path) as handle:
            self.restore(json.load(handle))

    def _save_if_persistent(self) -> None:
        if self.data_path:
            with self._lock:
                self.save(self.data_path)


def _run(route: Route, request: Request) -> Response:
    # Under the account lock, so a clock's frozen time cannot move while a request about its customer runs.
    for resolver in request.emulator.registry.clock_resolvers:
        scope = resolver(request)
        if scope is not None:
            with test_clock_scope(scope):
                return route.handler(request)
    return route.handler(request)


def _check_publishable(
    route: Route, account: Account, path_params: Mapping[str, str], params: Mapping[str, Any]
) -> None:
    """A publishable key reaches only what Stripe.js may call (``Route.publishable``); an intent only with its
    ``client_secret``. Refused before anything runs, so a refusal changes nothing."""
    if route.publishable is None:
        raise AuthenticationError(_PUBLISHABLE_REFUSED)
    if route.publishable == "any":
        return
    obj = account.store.get(route.publishable, path_params.get("id", ""))
    if obj is None:
        raise ResourceMissing(route.publishable, path_params.get("id", ""))
    secret = params.get("client_secret")
    if not secret:
        raise ParameterMissing("client_secret")
    if secret != obj.get("client_secret"):
        raise InvalidRequestError(
            f"The client_secret provided does not match the client_secret associated with the "
            f"{_INTENT_NAMES.get(route.publishable, route.publishable)}.",
            param="client_secret",
        )


def _error_response(exc: StripeError) -> Response:
    response = Response.json(exc.body(), exc.status)
    response.headers.update(exc.headers)
    return response


def _redact(api_key: str) -> str:
    return api_key[:8] + "*" * max(len(api_key) - 12, 0) + api_key[-4:] if len(api_key) > 12 else "***"
