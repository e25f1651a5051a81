"""Structured JSON logs carry the request id, project and key prefix; secrets and card numbers never appear."""

import json
import logging

import pytest

from core.logging import JsonFormatter, RedactingFilter, RequestContextFilter, redact
from tests.logs import logged


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("key sk_test_51Habcdefghijklmnop here", "sk_test_51Habcdefghijklmnop"),
        ("live sk_live_abcdefghij", "sk_live_abcdefghij"),
        ("restricted rk_live_abcdefghij", "rk_live_abcdefghij"),
        ("whsec_abcdefghijklmnop", "whsec_abcdefghijklmnop"),
        ("tg_sk_AbCdEfGhIjKlMnOp0123456789", "tg_sk_AbCdEfGhIjKlMnOp0123456789"),
        ("tg_plat_AbCdEfGhIjKlMnOp0123456789", "tg_plat_AbCdEfGhIjKlMnOp0123456789"),
        ("Authorization: Bearer abcdef0123456789", "abcdef0123456789"),
        ("pi_3abc_secret_xyz123", "pi_3abc_secret_xyz123"),
        ("card 4242424242424242 used", "4242424242424242"),
        ("card 4000 0000 0000 0002 used", "4000 0000 0000 0002"),
        ("card 5555-5555-5555-4444 used", "5555-5555-5555-4444"),
    ],
)
def test_redact_masks_secrets_and_card_numbers(text, leaked):
    assert leaked not in redact(text)


def test_card_mask_keeps_last_four_and_non_cards_stay():
    assert redact("card 4242424242424242") == "card [CARD ****4242]"
    assert redact("order 1234567890123") == "order 1234567890123"  # not a Luhn-valid number
    assert redact("amount 2500") == "amount 2500"


def _record(msg, *args, **extra):
    record = logging.LogRecord("test", logging.INFO, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_filter_redacts_arguments_and_extra_fields():
    record = _record(
        "charging %s with %s",
        "4242424242424242",
        "sk_test_abcdefghijkl",
        stripe_secret_key="sk_test_zzzzzzzz",
        detail={"api_key": "anything"},
    )
    RedactingFilter().filter(record)
    RequestContextFilter().filter(record)
    line = JsonFormatter().format(record)
    assert "4242424242424242" not in line
    assert "sk_test_abcdefghijkl" not in line
    assert "sk_test_zzzzzzzz" not in line
    assert "anything" not in line
    payload = json.loads(line)
    assert payload["message"] == "charging [CARD ****4242] with [REDACTED]"
    assert payload["stripe_secret_key"] == "[REDACTED]"
    assert payload["detail"] == {"api_key": "[REDACTED]"}


def test_exceptions_are_redacted():
    try:
        raise ValueError("bad key sk_test_exceptionsecret")
    except ValueError:
        import sys

        record = logging.LogRecord("test", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    RedactingFilter().filter(record)
    line = JsonFormatter().format(record)
    assert "sk_test_exceptionsecret" not in line
    assert "ValueError" in json.loads(line)["exception"]


def test_request_id_is_echoed_or_generated(api, tenant_a):
    given = api.get("/api/v1/project", key=tenant_a.key, headers={"X-Request-Id": "abc-123"})
    assert given["X-Request-Id"] == "abc-123"
    generated = api.get("/api/v1/project", key=tenant_a.key)
    assert generated["X-Request-Id"].startswith("req_")
    hostile = api.get("/api/v1/project", key=tenant_a.key, headers={"X-Request-Id": "bad id\nwith newline"})
    assert hostile["X-Request-Id"].startswith("req_")


def test_request_log_line_has_context_and_no_key(api, tenant_a):
    with logged("tollgate.request", logging.INFO) as stream:
        api.get("/api/v1/project", key=tenant_a.key, headers={"X-Request-Id": "trace-1"})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    payload = json.loads(lines[0])
    assert payload["request_id"] == "trace-1"
    assert payload["project"] == "alpha"
    assert payload["key_prefix"] == tenant_a.api_key.prefix
    assert payload["status"] == 200
    assert payload["path"] == "/api/v1/project"
    assert tenant_a.key not in lines[0]


@pytest.mark.parametrize(
    "text", ["runtime 0.006887157000164734s", "ratio 1234567890123456.5", "v=12.4242424242424242"]
)
def test_decimal_numbers_are_not_taken_for_cards(text):
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        # Task ids whose first groups are digits passing Luhn (1234567812340002): ids, not cards.
        "Task webhooks.tasks.process_stripe_event[12345678-1234-0002-832e-4c9955e2f5ac] received",
        "task 9f3e12345678-1234-0002",
        "order ab1234567812340002",
    ],
)
def test_ids_with_a_card_like_run_of_digits_are_not_masked(text):
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    ["card 1234-5678-1234-0002", "pm_card_1234567812340002", "[1234 5678 1234 0002]", "x=1234567812340002"],
)
def test_cards_grouped_or_glued_to_punctuation_are_still_masked(text):
    assert "[CARD ****0002]" in redact(text)


def test_card_at_the_end_of_a_sentence_is_still_masked():
    assert redact("paid with 4242424242424242.") == "paid with [CARD ****4242]."


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("GET /api/v1/payments?api_key=hunter2hunter2&customer=u1", "?api_key=[REDACTED]&customer=u1"),
        ("<WSGIRequest: GET '/x?client_secret=abc123'>", "?client_secret=[REDACTED]'>"),
        ("/cb?token=t0k3n#frag", "?token=[REDACTED]#frag"),
        ("/x?customer=u1&key=k3y", "&key=[REDACTED]"),
        ("/x?password=p4ss;sig=1", "?password=[REDACTED];sig=1"),
    ],
)
def test_query_parameters_carrying_secrets_are_redacted(text, kept):
    assert kept in redact(text)


def test_a_refused_request_logs_no_secret_of_its_query_string(api, tenant_a):
    """Django logs a 4xx with the request, whose repr holds the whole URL (the test settings log Django's errors
    only, so the logger is opened to warnings here)."""
    with logged("django.request", logging.WARNING) as stream:
        response = api.request(
            "GET", "/api/v1/payments?access_token=hunter2hunter2&customer=a%00", key=tenant_a.key
        )
    assert response.status_code == 400
    line = stream.getvalue()
    assert "access_token=[REDACTED]" in line
    assert "hunter2hunter2" not in line


def test_the_quick_look_never_skips_a_text_redaction_would_change():
    """`redact` returns a text as it is when one search finds nothing any pattern needs: on texts made of the
    pieces secrets, cards and credentials are made of, it answers exactly what every substitution would."""
    import random

    from core.logging import redact, redact_all

    pieces = [
        "sk_",
        "rk_",
        "test_",
        "live_",
        "whsec_",
        "pi_",
        "seti_",
        "_secret_",
        "tg_",
        "sk",
        "pk_",
        "plat_",
        "Bearer ",
        "bearer\t",
        "?",
        "&",
        ";",
        "=",
        "api_key",
        "token",
        "key",
        "secret",
        "abcDEF123456",
        "4242",
        "4242 ",
        "4242-",
        "4000056655665556",
        "378282246310005",
        "1",
        "12",
        " ",
        "-",
        ".",
        "/api/v1/x",
        "GET",
        "é",
        "x",
    ]
    rng = random.Random(20261125)
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        assert redact(text) == redact_all(text), text
