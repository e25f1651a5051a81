"""Browsers ask every site for /favicon.ico: Tollgate and the Stripe emulator's hosted pages answer an icon, not
a 404, and their pages name it."""

from pathlib import Path
from urllib.request import urlopen

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import Client

from stripe_emulator import Emulator
from stripe_emulator.core.html import page
from stripe_emulator.server import serve_in_thread

ICO_MAGIC = b"\x00\x00\x01\x00"  # an ICO file's header: reserved 0, type 1 (icon)


def test_tollgate_answers_its_favicon(db):
    response = Client().get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content).startswith(ICO_MAGIC)


def test_the_admin_pages_name_their_icon(db):
    login = Client().get("/admin/login/").content.decode()
    link = '<link rel="icon" href="/static/tollgate/favicon.svg" type="image/svg+xml">'
    assert link in login
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    assert link in client.get("/admin/billing/payment/").content.decode()
    svg = Path(str(finders.find("tollgate/favicon.svg"))).read_text()
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')


@pytest.fixture
def served_emulator():
    emulator = Emulator(webhook_mode="manual")
    server = serve_in_thread(emulator)
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        emulator.close()


def test_the_emulators_hosted_pages_have_their_icon(served_emulator):
    with urlopen(f"{served_emulator}/favicon.ico", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/x-icon"
        assert response.read().startswith(ICO_MAGIC)
    assert '<link rel="icon" href="/favicon.ico" type="image/x-icon">' in page(
        title="t", summary="", panel=""
    )
