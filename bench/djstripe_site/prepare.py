"""`python -m bench.djstripe_site.prepare`, in the dj-stripe venv after `migrate` (bench/djstripe.py): the rows a
dj-stripe deployment has before its first webhook, read from the Stripe emulator serving the capture's state.

- The API key and its Stripe account: `Account.get_or_retrieve_for_api_key` (an `APIKey` row, `GET /v1/account`,
  an `Account` row), as dj-stripe does on the first object it syncs for a key. Done here once, so the replay's
  first concurrent events do not all race to create them.
- The webhook endpoint: the one the capture registered at the emulator, synced from `GET /v1/webhook_endpoints`
  as dj-stripe syncs any endpoint made elsewhere, then given the signing secret (Stripe shows it only when the
  endpoint is created, so dj-stripe's documentation has it set by hand) and signature validation.

Nothing of the customers, subscriptions or catalog is synced: dj-stripe fetches what each event names.
Prints `{"uuid", "endpoint", "account"}` as JSON: the webhook URL is `/stripe/webhook/<uuid>/`."""

import json
import os

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.djstripe_site.settings")
    django.setup()
    import stripe
    from django.conf import settings
    from djstripe.enums import WebhookEndpointValidation
    from djstripe.models import Account, WebhookEndpoint
    from djstripe.settings import djstripe_settings

    key = settings.STRIPE_TEST_SECRET_KEY
    account = Account.get_or_retrieve_for_api_key(key)
    endpoints = stripe.WebhookEndpoint.list(api_key=key, stripe_version=djstripe_settings.STRIPE_API_VERSION)
    if len(endpoints.data) != 1:
        raise SystemExit(f"expected one webhook endpoint at the emulator, found {len(endpoints.data)}")
    endpoint = WebhookEndpoint.sync_from_stripe_data(endpoints.data[0], api_key=key)
    endpoint.secret = os.environ["DJSTRIPE_BENCH_WEBHOOK_SECRET"]
    endpoint.djstripe_validation_method = WebhookEndpointValidation.verify_signature
    endpoint.save()
    print(json.dumps({"uuid": str(endpoint.djstripe_uuid), "endpoint": endpoint.id, "account": account.id}))


if __name__ == "__main__":
    main()
