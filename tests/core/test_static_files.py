"""Production serves its own static files (WhiteNoise): after collectstatic with the production storage, the
admin's CSS and every asset the API docs page links to answer 200, without DEBUG and without a web server in
front."""

import re

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

PRODUCTION_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


@pytest.mark.django_db
def test_collected_static_files_are_served_with_debug_off(tmp_path):
    with override_settings(STATIC_ROOT=str(tmp_path), STORAGES=PRODUCTION_STORAGES, DEBUG=False):
        call_command("collectstatic", "--noinput", verbosity=0)
        client = Client()
        css = client.get("/static/admin/css/base.css")
        assert (css.status_code, css["Content-Type"].split(";")[0]) == (200, "text/css")
        docs = client.get("/api/docs/")
        assert docs.status_code == 200
        assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', docs.content.decode())
        assert len(assets) >= 2  # swagger-ui's bundle and stylesheet, under their hashed names
        assert [client.get(asset).status_code for asset in assets] == [200] * len(assets)
        assert "max-age=315360000" in client.get(assets[0])["Cache-Control"]  # hashed names cache forever
