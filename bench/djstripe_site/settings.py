"""Settings of the dj-stripe 2.11 project bench/djstripe.py serves with gunicorn (see the package's docstring).

What dj-stripe reads, from its own source (djstripe/settings.py, models/webhooks.py): the secret key by mode
(`STRIPE_TEST_SECRET_KEY` with `STRIPE_LIVE_MODE = False`), `STRIPE_API_HOST` (it sets `stripe.api_base` from it:
the Stripe emulator here), `DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"` (foreign keys to Stripe ids; its migrations
read the setting, so it is required), and `DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"` (the
`Stripe-Signature` header checked with the endpoint's secret, no call back to Stripe; its system checks read the
setting, while the webhook view follows each `WebhookEndpoint` row's `djstripe_validation_method`, which
prepare.py sets to the same).
Stripe's API version is left to dj-stripe: the installed SDK's. The database is as Tollgate's production settings
have it (persistent connections for 60 s with health checks, no ATOMIC_REQUESTS: dj-stripe's view opts out anyway).
"""

import os
from urllib.parse import unquote, urlsplit

_database = urlsplit(os.environ["DJSTRIPE_BENCH_DATABASE_URL"])

SECRET_KEY = "bench-djstripe-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",  # the default subscriber model (DJSTRIPE_SUBSCRIBER_MODEL → AUTH_USER_MODEL)
    "django.contrib.contenttypes",
    "djstripe",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "bench.djstripe_site.urls"
WSGI_APPLICATION = "bench.djstripe_site.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _database.path.lstrip("/"),
        "USER": unquote(_database.username or "postgres"),
        "PASSWORD": unquote(_database.password or ""),
        "HOST": _database.hostname or "127.0.0.1",
        "PORT": str(_database.port or 5432),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

STRIPE_LIVE_MODE = False
STRIPE_TEST_SECRET_KEY = os.environ["DJSTRIPE_BENCH_STRIPE_KEY"]
STRIPE_API_HOST = os.environ["DJSTRIPE_BENCH_STRIPE_API_BASE"]
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
# djstripe.W002 warns that STRIPE_API_HOST is set without DEBUG ("not in production"): pointing it at the emulator
# is this project's purpose.
SILENCED_SYSTEM_CHECKS = ["djstripe.W002"]

# A processing error answers 500 (dj-stripe re-raises it); its traceback goes to gunicorn's log, and dj-stripe's
# own warnings (an object gone at Stripe, skipped) too. Django's default logs nothing without DEBUG.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        "djstripe": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
