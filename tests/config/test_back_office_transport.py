"""The back office over plain HTTP (issue: "an admin login from any host but localhost answers 403 CSRF
verification failed"). Production's cookies are `Secure`, which a browser does not keep over plain HTTP: the back
office says so, with what to change, before a password is typed, instead of failing the login with Django's CSRF
page. `INSECURE_HTTP=true` (production only) drops `Secure` and the HTTPS redirect and HSTS, and every page of the
back office, the login included, says that the connection is not encrypted.

`.ci/prod-install-check` does the same against gunicorn with `config.settings.production`: the page without it,
and a real sign-in over plain HTTP with it.
"""

import subprocess
import sys
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from tests.config.test_entry_points import ROOT, secrets_env

PRODUCTION_COOKIES = {"CSRF_COOKIE_SECURE": True, "SESSION_COOKIE_SECURE": True}
SHOW = (
    "import config.wsgi; from django.conf import settings as s; "
    "print(s.INSECURE_HTTP, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
    "s.SECURE_HSTS_SECONDS)"
)


def _production_settings(tmp_path, **env: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=ROOT,
        env=secrets_env(tmp_path, **env),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_production_cookies_are_secure_unless_the_operator_says_plain_http(tmp_path):
    assert _production_settings(tmp_path) == ["False", "True", "True", "True", "31536000"]
    assert _production_settings(tmp_path, SECURE_SSL_REDIRECT="false") == [
        "False",
        "True",
        "True",
        "False",
        "31536000",
    ]
    # Plain HTTP on purpose: no Secure cookies, no redirect to an https that is not there, no HSTS promise.
    assert _production_settings(tmp_path, INSECURE_HTTP="true", SECURE_SSL_REDIRECT="true") == [
        "True",
        "False",
        "False",
        "False",
        "0",
    ]


@pytest.mark.django_db
@override_settings(**PRODUCTION_COOKIES)
def test_over_plain_http_the_back_office_explains_itself_instead_of_a_login_that_cannot_work():
    client = Client()

    page = client.get("/admin/login/")

    assert page.status_code == 403
    text = page.content.decode()
    assert "Tollgate's back office needs HTTPS" in text
    assert "INSECURE_HTTP=true" in text
    assert "X-Forwarded-Proto: https" in text
    assert 'name="password"' not in text  # no password typed over plain HTTP
    assert "csrftoken" not in page.cookies
    assert "sessionid" not in page.cookies
    # Every page of the back office, not only the login; a POST does not reach the login either.
    assert client.get("/admin/dashboard/").status_code == 403
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-long-enough-1")
    posted = client.post("/admin/login/", {"username": "ops", "password": "pw-long-enough-1"})
    assert posted.status_code == 403
    assert b"needs HTTPS" in posted.content
    user.refresh_from_db()
    assert user.last_login is None  # nothing happened
    # What is not the back office is served over plain HTTP as before: probes, the API, Stripe's webhooks.
    assert client.get("/live").status_code == 200
    assert client.get("/api/v1/project").status_code == 401


def _sign_in(client: Client, login_page: Any, **extra: Any) -> Any:
    """Posts the login form as a browser would: the operator's credentials and the page's CSRF token."""
    return client.post(
        "/admin/login/",
        {
            "username": "ops",
            "password": "pw-long-enough-1",
            "next": "/admin/",
            "csrfmiddlewaretoken": login_page.cookies["csrftoken"].value,
        },
        **extra,
    )


@pytest.mark.django_db
@override_settings(**PRODUCTION_COOKIES)
def test_through_a_tls_proxy_the_login_works_with_secure_cookies():
    get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-long-enough-1")
    client = Client(enforce_csrf_checks=True, headers={"X-Forwarded-Proto": "https"})

    page = client.get("/admin/login/", secure=True)
    assert page.status_code == 200
    assert page.cookies["csrftoken"]["secure"] is True
    assert b"Not encrypted" not in page.content

    signed_in = _sign_in(client, page, secure=True, headers={"Referer": "https://testserver/admin/login/"})
    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/admin/"
    assert signed_in.cookies["sessionid"]["secure"] is True


@pytest.mark.django_db
@override_settings(INSECURE_HTTP=True, CSRF_COOKIE_SECURE=False, SESSION_COOKIE_SECURE=False)
def test_with_insecure_http_the_operator_signs_in_over_plain_http_and_every_page_says_it():
    get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-long-enough-1")
    client = Client(enforce_csrf_checks=True)

    page = client.get("/admin/login/")
    assert page.status_code == 200
    assert b"Not encrypted" in page.content
    assert b"INSECURE_HTTP=true" in page.content
    assert page.cookies["csrftoken"]["secure"] == ""

    signed_in = _sign_in(client, page)
    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/admin/"
    index = client.get("/admin/")
    assert index.status_code == 200
    assert b"Not encrypted" in index.content
    assert b"Log out" in index.content


@pytest.mark.django_db
def test_without_secure_cookies_and_without_insecure_http_nothing_is_said(admin_client):
    # Development and tests: cookies are not Secure and no warning is due (INSECURE_HTTP is production's word).
    page = admin_client.get("/admin/")
    assert page.status_code == 200
    assert b"Not encrypted" not in page.content
