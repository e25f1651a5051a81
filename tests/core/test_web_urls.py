"""Redirect and endpoint addresses: what the schema's pattern allows, the server accepts — including the
development hosts `make demo` redirects to (127.0.0.1, localhost, any port) — and what it refuses stays refused."""

import re

import pytest

from core.serializers import WEB_URL_PATTERN, WebUrlField


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/demo/return",
        "http://localhost:12111/x?y=1",
        "https://app.example.com/ok",
        "https://shop.example.co.uk:65535/p#done",
    ],
)
def test_development_and_public_addresses_are_accepted_and_match_the_schema(url):
    assert re.fullmatch(WEB_URL_PATTERN, url, re.IGNORECASE)
    assert WebUrlField().run_validation(url) == url


@pytest.mark.parametrize(
    "url",
    ["http://999.1.1.1/", "http://intranet/", "ftp://example.com/", "https://exa mple.com/", "//example.com"],
)
def test_other_addresses_are_refused_by_both(url):
    from rest_framework.exceptions import ValidationError

    assert not re.fullmatch(WEB_URL_PATTERN, url, re.IGNORECASE)
    with pytest.raises(ValidationError):
        WebUrlField().run_validation(url)
