"""Every error class of the client, raised for its status by the live server (or, for what only a broken
network produces, by the proxy)."""

import pytest
import stripe
from django.test import override_settings
from tollgate_client import (
    APIError,
    AuthenticationError,
    CardError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    Tollgate,
    TollgateError,
)

from billing.models import Payment
from catalog.models import Product
from entitlements.models import UsageEvent
from projects.models import Project
from stripe_emulator.sdk import EmulatorHTTPClient
from stripe_gateway import client as stripe_client
from tests.catalog import price_create
from tests.clients.conftest import CANCEL, OK, complete_checkout

pytestmark = pytest.mark.django_db(transaction=True)


def test_401_bad_key(live_server, tenant_a):
    with (
        Tollgate("tg_sk_not_a_real_key", live_server.url) as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.project.retrieve()
    error = caught.value
    assert (error.status, error.type, error.code) == (401, "authentication_error", "invalid_api_key")
    assert error.request_id
    assert isinstance(error, TollgateError)


def test_403_platform_route_with_a_project_key(tollgate):
    with pytest.raises(PermissionDeniedError) as caught:
        tollgate.projects.list()
    assert (caught.value.status, caught.value.type) == (403, "permission_error")


def test_403_a_project_route_with_the_platform_key(live_server, platform_key):
    with Tollgate(platform_key, live_server.url) as platform, pytest.raises(PermissionDeniedError):
        platform.customers.list()


def test_400_names_the_param(tollgate, catalog):
    with pytest.raises(InvalidRequestError) as caught:
        tollgate.checkout.item(
            customer="user-1",
            price="credits-1000",
            success_url="https://evil.example.net/",
            cancel_url=CANCEL,
        )
    error = caught.value
    assert (error.status, error.type, error.code, error.param) == (
        400,
        "invalid_request_error",
        "redirect_not_allowed",
        "success_url",
    )
    assert error.request_id


def test_400_nested_param(tollgate, catalog):
    with pytest.raises(InvalidRequestError) as caught:
        tollgate.checkout.cart(
            customer="user-1",
            items=[{"price": "credits-1000"}, {"price": "sticker", "quantity": 0}],
            success_url=OK,
            cancel_url=CANCEL,
        )
    assert caught.value.param == "items[1].quantity"


def test_405_and_413_are_invalid_requests(tollgate):
    with pytest.raises(InvalidRequestError) as caught:
        tollgate.request("PUT", "/customers", body={})
    assert caught.value.status == 405
    with pytest.raises(InvalidRequestError) as caught:
        tollgate.customers.create(external_id="user-1", metadata={"blob": "x" * (2 * 1024 * 1024)})
    assert caught.value.status == 413


def test_404_missing_and_other_projects_objects_alike(tollgate, tollgate_b, catalog):
    with pytest.raises(NotFoundError) as caught:
        tollgate.payments.retrieve("pay_doesnotexist")
    assert (caught.value.status, caught.value.type) == (404, "not_found")
    payment = tollgate.payments.create(
        customer="user-1", price="credits-1000", flow="checkout", success_url=OK, cancel_url=CANCEL
    )
    with pytest.raises(NotFoundError):
        tollgate_b.payments.retrieve(payment.id)
    with pytest.raises(NotFoundError):
        tollgate_b.payments.refund(payment.id)
    assert Payment.objects.get(pk=payment.id).amount_refunded == 0


def test_409_reference_conflict(tollgate, catalog):
    first = tollgate.payments.create(
        customer="user-1", price="credits-1000", reference="order-1", success_url=OK, cancel_url=CANCEL
    )
    same = tollgate.payments.create(
        customer="user-1", price="credits-1000", reference="order-1", success_url=OK, cancel_url=CANCEL
    )
    assert same.id == first.id
    with pytest.raises(ConflictError) as caught:
        tollgate.payments.create(
            customer="user-1", price="sticker", reference="order-1", success_url=OK, cancel_url=CANCEL
        )
    assert (caught.value.status, caught.value.type, caught.value.code) == (
        409,
        "conflict",
        "reference_conflict",
    )


def test_402_card_error_with_decline_code(tollgate, catalog, stripe_emulator, stripe_webhooks, stripe_sdk):
    premium = price_create(catalog.pro, "pro-premium", 9000, interval="month")
    session = tollgate.checkout.subscription(
        customer="user-1", price="pro-monthly", success_url=OK, cancel_url=CANCEL
    )
    complete_checkout(stripe_emulator, session.stripe_session_id)
    stripe_webhooks.deliver()
    (subscription,) = tollgate.subscriptions.list(customer="user-1").data
    sdk = stripe_sdk()
    failing = sdk.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4000000000000341", "exp_month": 12, "exp_year": 2034, "cvc": "1"},
        }
    )
    customer_id = tollgate.customers.retrieve("user-1").stripe_customer_id
    sdk.v1.payment_methods.attach(failing.id, {"customer": customer_id})
    sdk.v1.subscriptions.update(subscription.stripe_subscription_id, {"default_payment_method": failing.id})
    stripe_webhooks.deliver()
    with pytest.raises(CardError) as caught:
        tollgate.subscriptions.update(
            subscription.id,
            price=premium.key,
            proration_behavior="always_invoice",
            payment_behavior="error_if_incomplete",
        )
    error = caught.value
    assert (error.status, error.type) == (402, "card_error")
    assert error.decline_code
    assert tollgate.subscriptions.retrieve(subscription.id).price == "pro-monthly"


def test_429_rate_limit_with_retry_after(live_server, tenant_a):
    with (
        override_settings(API_RATE_LIMIT_PER_MINUTE=1),
        Tollgate(tenant_a.key, live_server.url, max_retries=0) as client,
    ):
        client.project.retrieve()
        error = _refused_within_the_window(client)
    assert (error.status, error.type) == (429, "rate_limit_error")
    assert error.retry_after is not None
    assert 0 < error.retry_after <= 60


def _refused_within_the_window(client: Tollgate) -> RateLimitError:
    """The next request over a limit of one per minute, refused. The windows are fixed minutes: a first request in
    the last moment of one and the next in the first of the following both pass, so a third is allowed to be the
    one refused (three requests a few milliseconds apart cannot span two window ends)."""
    for _ in range(2):
        try:
            client.project.retrieve()
        except RateLimitError as error:
            return error
    pytest.fail("two more requests within a minute were not refused (limit: one per minute)")


def test_502_stripe_refuses_the_projects_credentials(tollgate, tenant_a):
    Project.objects.filter(pk=tenant_a.project.pk).update(stripe_secret_key="sk_live_not_accepted_here")
    with pytest.raises(ProviderError) as caught:
        tollgate.with_options(max_retries=0).products.create(key="pro", name="Pro")
    error = caught.value
    assert (error.status, error.type, error.code) == (
        502,
        "payment_provider_error",
        "provider_authentication_failed",
    )
    assert Product.objects.get().stripe_product_id == ""


class _Unreachable(stripe.HTTPClient):
    """Stripe's network drops every connection (the process boundary the tests do not own)."""

    name = "unreachable"

    def request(self, method, url, headers, post_data=None, **kwargs):
        raise stripe.APIConnectionError("connection refused")

    def request_with_retries(self, method, url, headers, post_data=None, max_network_retries=None, **kwargs):
        raise stripe.APIConnectionError("connection refused")

    def close(self):
        pass


def test_503_stripe_unreachable_then_the_same_reference_completes_once(
    tollgate, tenant_a, catalog, stripe_emulator
):
    stripe_client.install_http_client(_Unreachable())
    client = tollgate.with_options(max_retries=0)
    with pytest.raises(ProviderError) as caught:
        client.payments.create(customer="user-1", price="sticker", flow="intent", reference="order-9")
    assert (caught.value.status, caught.value.code) == (503, "provider_unavailable")

    # Stripe is back: the payment's `reference` (not the idempotency key: a 5xx answer is not stored) makes
    # the retry resume the same payment.
    stripe_client.install_http_client(EmulatorHTTPClient(stripe_emulator))
    payment = client.payments.create(customer="user-1", price="sticker", flow="intent", reference="order-9")
    assert payment.client_secret
    assert list(Payment.objects.filter(project=tenant_a.project).values_list("pk", flat=True)) == [payment.id]


@pytest.mark.parametrize(("status", "cls"), [(500, APIError), (502, ProviderError), (504, APIError)])
def test_other_statuses_by_class(via_proxy, proxy, status, cls):
    proxy.fail("GET", status)
    with pytest.raises(cls) as caught:
        via_proxy.with_options(max_retries=0).project.retrieve()
    assert caught.value.status == status


def test_a_body_that_is_not_the_envelope_still_gives_the_class(live_server, tenant_a):
    # An HTML error page from something between the client and Tollgate.
    from tests.events.receiver import Receiver

    html = Receiver(default_status=502).start()
    try:
        base = html.url.rsplit("/", 1)[0]
        with Tollgate(tenant_a.key, base, max_retries=0) as client, pytest.raises(ProviderError) as caught:
            client.customers.create(external_id="user-1")
    finally:
        html.stop()
    assert caught.value.status == 502
    assert caught.value.code is None
    assert caught.value.message.startswith("upstream trouble")


def test_the_entitlement_routes_raise_the_same_classes(live_server, tenant_a, platform_key, plans):
    with (
        Tollgate("tg_sk_not_a_real_key", live_server.url) as stranger,
        pytest.raises(AuthenticationError) as caught,
    ):
        stranger.entitlements.check(customer="user-1", feature="exports")
    assert (caught.value.status, caught.value.code) == (401, "invalid_api_key")
    assert caught.value.request_id
    with Tollgate(platform_key, live_server.url) as platform, pytest.raises(PermissionDeniedError) as denied:
        platform.entitlements.consume(id="e-1", customer="user-1", feature="exports")
    assert denied.value.status == 403
    with Tollgate(tenant_a.key, live_server.url, max_retries=0) as client:
        with pytest.raises(NotFoundError) as missing:
            client.entitlements.revocations.delete("erv_doesnotexist", reason="tidy up")
        fresh = client.project.api_keys.create(name="rate limited").api_key  # its own, unused, allowance
    assert (missing.value.status, missing.value.type) == (404, "not_found")
    assert fresh
    with (
        override_settings(API_RATE_LIMIT_PER_MINUTE=1),
        Tollgate(fresh, live_server.url, max_retries=0) as client,
    ):
        client.entitlements.check(customer="user-1", feature="exports")
        with pytest.raises(RateLimitError) as limited:
            client.entitlements.check(customer="user-1", feature="exports")
        with pytest.raises(RateLimitError):
            client.usage.record(id="e-1", customer="user-1", feature="exports", quantity=1)
    assert limited.value.retry_after is not None
    assert 0 < limited.value.retry_after <= 60
    assert not UsageEvent.objects.exists()
