"""The test suite: embedded by default, PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set (CI)."""

from config.settings.base import *  # noqa: F403
from config.settings.base import EMBEDDED_BROKER_URL, broker_settings, env

DEBUG = False
SECRET_KEY = "django-insecure-test-only"
FIELD_ENCRYPTION_KEYS = ["dGVzdC1zdWl0ZS1vbmx5LWtleS1uZXZlci1pbi11c2U="]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests run queued work in-process unless a test starts a real worker on purpose.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=EMBEDDED_BROKER_URL)
_TEST_BROKER = broker_settings(CELERY_BROKER_URL)
CELERY_TASK_DEFAULT_QUEUE_TYPE = _TEST_BROKER["CELERY_TASK_DEFAULT_QUEUE_TYPE"]
CELERY_TASK_DEFAULT_EXCHANGE_TYPE = _TEST_BROKER["CELERY_TASK_DEFAULT_EXCHANGE_TYPE"]
CELERY_BROKER_TRANSPORT_OPTIONS = _TEST_BROKER["CELERY_BROKER_TRANSPORT_OPTIONS"]
LOG_LEVEL = env("LOG_LEVEL", default="WARNING")
LOGGING["root"]["level"] = LOG_LEVEL  # noqa: F405
LOGGING["loggers"]["django"]["level"] = "ERROR"  # noqa: F405
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
# Tests drive the in-process emulator (tests/conftest.py installs its HTTP client into the gateway).
STRIPE_SECRET_KEY = "sk_test_tollgate_platform"
STRIPE_PUBLISHABLE_KEY = "pk_test_tollgate_platform"
# A worker subprocess started by a test reaches the test's emulator served over HTTP.
STRIPE_API_BASE = env("STRIPE_API_BASE", default="http://stripe-emulator.invalid")
# Tests never run collectstatic (the one test of static files sets its own STATIC_ROOT).
STATIC_ROOT = env("STATIC_ROOT", default=None)
