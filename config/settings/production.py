"""Production: every secret comes from the environment, and the process refuses to start without it."""

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import DEBUG, FIELD_ENCRYPTION_KEYS, SECRET_KEY, env

if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set in production.")
if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production.")
# The demo's pages show a project's customers without a key: never in production, whatever the environment says.
DEMO_PAGES = False
if not FIELD_ENCRYPTION_KEYS:
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEYS must be set in production (Fernet keys, comma-separated)."
    )

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Plain HTTP on purpose (a trial on a private network, no TLS in front): the operator says so, and the back office
# then says so on every page (templates/admin/base_site.html). Without it the session and CSRF cookies are
# `Secure`, which a browser does not keep over plain HTTP, so the back office answers a plain-HTTP request with a
# page that explains this (core.middleware.BackOfficeTransportMiddleware) instead of a CSRF failure at login.
INSECURE_HTTP = env.bool("INSECURE_HTTP", default=False)
SECURE_SSL_REDIRECT = False if INSECURE_HTTP else env.bool("SECURE_SSL_REDIRECT", default=True)
# Load balancers probe these over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^live$", r"^ready$"]
SESSION_COOKIE_SECURE = not INSECURE_HTTP
CSRF_COOKIE_SECURE = not INSECURE_HTTP
SECURE_HSTS_SECONDS = 0 if INSECURE_HTTP else env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_CONTENT_TYPE_NOSNIFF = True
# Tenant endpoints must be public https URLs: no deliveries to private or loopback addresses (SSRF).
OUTBOUND_WEBHOOK_REQUIRE_HTTPS = env.bool("OUTBOUND_WEBHOOK_REQUIRE_HTTPS", default=True)
OUTBOUND_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.bool("OUTBOUND_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=False)

# collectstatic (at image build) writes hashed, compressed copies that WhiteNoise serves with far-future caching.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
