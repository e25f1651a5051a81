"""WSGI entry point (gunicorn config.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_wsgi_application()


def _warm_up() -> None:
    """Imports now what each web process would otherwise import on its first requests, inside them: every URLconf
    and view, the Redis client behind the cache and the broker's transport (about 0.2 s of CPU per process, spent
    at start instead of in a tenant's or Stripe's request). Nothing connects here."""
    from django.conf import settings
    from django.urls import get_resolver

    from config.celery import app

    get_resolver().url_patterns  # noqa: B018 (the property imports every urls module and its views)
    if "redis" in settings.CACHES["default"]["BACKEND"]:
        import redis  # noqa: F401
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        app.connection_for_write()  # imports the transport; connects only when used


_warm_up()
