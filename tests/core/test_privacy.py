"""`core.privacy.Erasure`: what an erasure replaces in stored JSON and text, and what it never touches."""

from core.privacy import ERASED, Erasure

EMAIL = "Zelda@Example.org"
NAME = "Zelda Quixote"


def _erasure() -> Erasure:
    return Erasure.of(texts=[EMAIL, NAME, "Al"], exact={"user-7": "erased_abc", "vip": ERASED})


def test_personal_keys_are_nulled_and_money_ids_and_statuses_kept():
    event = {
        "id": "evt_1",
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": "cs_test_a1b2c3d4",
                "object": "checkout.session",
                "amount_total": 400,
                "currency": "usd",
                "status": "complete",
                "customer": "cus_Q1w2e3r4t5",
                "customer_details": {"email": EMAIL, "name": NAME, "address": {"line1": "1 Rue"}},
                "metadata": {"tollgate_customer": "cust_x1y2z3w4", "external_id": "user-7"},
            }
        },
    }
    scrubbed = _erasure().json(event)
    obj = scrubbed["data"]["object"]
    assert obj["customer_details"] is None
    assert obj["metadata"] == {"tollgate_customer": "cust_x1y2z3w4", "external_id": "erased_abc"}
    assert {k: obj[k] for k in ("id", "amount_total", "currency", "status", "customer")} == {
        "id": "cs_test_a1b2c3d4",
        "amount_total": 400,
        "currency": "usd",
        "status": "complete",
        "customer": "cus_Q1w2e3r4t5",
    }
    assert event["data"]["object"]["customer_details"]["email"] == EMAIL  # the input is not changed


def test_a_customer_object_loses_its_person_and_keeps_its_routing_metadata():
    customer = {
        "id": "cus_Q1w2e3r4t5",
        "object": "customer",
        "email": EMAIL,
        "name": NAME,
        "phone": "+33100000000",
        "address": {"line1": "1 Rue", "country": "FR"},
        "metadata": {"tollgate_project": "proj_a1b2c3d4", "team": "blue"},
        "balance": 0,
    }
    assert Erasure().json(customer) == {
        "id": "cus_Q1w2e3r4t5",
        "object": "customer",
        "email": None,
        "name": None,
        "phone": None,
        "address": None,
        "metadata": {"tollgate_project": "proj_a1b2c3d4", "team": ERASED},
        "balance": 0,
    }


def test_values_are_replaced_case_insensitively_in_text_and_short_ones_only_whole():
    erasure = _erasure()
    assert erasure.text(f"refund for {NAME.upper()} <{EMAIL.lower()}>") == f"refund for {ERASED} <{ERASED}>"
    assert erasure.text("Al") == ERASED  # a short name: only as a whole string
    assert erasure.text("Almond plan") == "Almond plan"
    assert erasure.text("vip") == ERASED
    assert erasure.text("user-7") == "erased_abc"
    assert erasure.text("user-77") == "user-77"
    assert erasure.path("/api/v1/customers/user-7/erase") == "/api/v1/customers/erased_abc/erase"


def test_values_learned_from_stripe_are_found_elsewhere():
    erasure = Erasure()
    erasure.learn(
        {"object": "customer", "address": {"line1": "42 Wisteria Lane", "country": "FR", "state": "75"}}
    )
    assert erasure.text("ship to 42 wisteria lane") == f"ship to {ERASED}"
    assert erasure.text("FR") == "FR"  # a country code is nobody's


def test_the_user_id_is_replaced_as_a_whole_token_inside_text_and_nowhere_else():
    erasure = Erasure.of(texts=[EMAIL], tokens={"leaver-7": "erased_abc", "u1": "erased_def"})
    # A delivery answer echoing the event as text, cut at 2 KB (not JSON any more).
    echoed = '{"received": {"type":"customer.updated","data":{"object":{"customer":"leaver-7","email":"zel'
    assert erasure.text(echoed) == (
        '{"received": {"type":"customer.updated","data":{"object":{"customer":"erased_abc","email":"zel'
    )
    assert erasure.text("Customer Leaver-7 (cust_1)") == "Customer erased_abc (cust_1)"
    assert erasure.text("leaver-7") == "erased_abc"
    assert erasure.json({"note": "asked by leaver-7."}) == {"note": "asked by erased_abc."}
    # Not inside a longer id, email or word; a short user id only as a whole string.
    for kept in (
        "leaver-77",
        "xleaver-7",
        "leaver-7@example.org",
        "leaver-7_old",
        "leaver-7.example.com",
        "ref u1x",
    ):
        assert erasure.text(kept) == kept
    assert erasure.text("u1") == "erased_def"
    assert "leaver-7" in erasure.needles
    assert "leaver-7" in erasure.json_needles
