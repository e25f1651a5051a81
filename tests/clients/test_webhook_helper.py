"""`tollgate_client.webhooks.construct_event`: the receiver's few lines of verification."""

import time

import pytest
from tollgate_client.webhooks import SignatureVerificationError, construct_event

from events.signing import signature_header

BODY = b'{"id":"evt_1","object":"event","type":"payment.succeeded","created":"2026-11-22T10:00:00Z","project":"proj_1","sequence":7,"data":{"object":{"id":"pay_1"}}}'


def test_valid_delivery_parses():
    header = signature_header(body=BODY, secrets=["whsec_a"], timestamp=int(time.time()))
    event = construct_event(BODY, header, "whsec_a")
    assert (event.id, event.type, event.sequence, event.object) == (
        "evt_1",
        "payment.succeeded",
        7,
        {"id": "pay_1"},
    )


@pytest.mark.parametrize(
    ("header", "secret"),
    [
        (lambda: signature_header(body=BODY, secrets=["whsec_a"], timestamp=int(time.time())), "whsec_b"),
        (
            lambda: signature_header(body=BODY, secrets=["whsec_a"], timestamp=int(time.time()) - 301),
            "whsec_a",
        ),
        (lambda: "v1=abc", "whsec_a"),
        (lambda: "t=x,v1=abc", "whsec_a"),
        (lambda: "", "whsec_a"),
    ],
)
def test_bad_deliveries_are_refused(header, secret):
    with pytest.raises(SignatureVerificationError):
        construct_event(BODY, header(), secret)


def test_tampered_body_is_refused():
    header = signature_header(body=BODY, secrets=["whsec_a"], timestamp=int(time.time()))
    with pytest.raises(SignatureVerificationError):
        construct_event(BODY.replace(b"pay_1", b"pay_2"), header, "whsec_a")


def test_any_secret_of_a_list_and_any_signature_of_a_roll():
    header = signature_header(body=BODY, secrets=["whsec_new", "whsec_old"], timestamp=int(time.time()))
    assert construct_event(BODY, header, ["whsec_other", "whsec_old"]).id == "evt_1"
