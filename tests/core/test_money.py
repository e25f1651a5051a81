"""Money is shown by its currency's minor unit (Stripe's rules), never by dividing everything by 100."""

import pytest

from core.money import minor_unit_exponent, money_format, money_parse


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (4900, "usd", "$49.00"),
        (4905, "USD", "$49.05"),
        (123456789, "usd", "$1,234,567.89"),
        (1250, "eur", "€12.50"),
        (99, "gbp", "£0.99"),
        (500, "jpy", "¥500"),
        (1234500, "jpy", "¥1,234,500"),
        (15000, "krw", "15,000 KRW"),
        (12500, "kwd", "12.500 KWD"),
        (5, "bhd", "0.005 BHD"),
        (4900, "chf", "49.00 CHF"),
    ],
)
def test_amounts_use_the_currencys_minor_unit(amount, currency, text):
    assert money_format(amount, currency) == text


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (-4900, "usd", "-$49.00"),
        (-7, "usd", "-$0.07"),
        (-500, "jpy", "-¥500"),
        (-1250, "kwd", "-1.250 KWD"),
        (-1250, "chf", "-12.50 CHF"),
    ],
)
def test_negative_amounts_put_the_sign_first(amount, currency, text):
    assert money_format(amount, currency) == text


@pytest.mark.parametrize(
    ("currency", "text"), [("usd", "$0.00"), ("jpy", "¥0"), ("kwd", "0.000 KWD"), ("xyz", "0.00 XYZ")]
)
def test_zero(currency, text):
    assert money_format(0, currency) == text


def test_an_unknown_currency_has_two_decimals_and_its_code():
    assert minor_unit_exponent("xyz") == 2
    assert money_format(123456, "xyz") == "1,234.56 XYZ"


def test_exponents_follow_stripes_lists():
    zero = [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
    three = ["BHD", "JOD", "KWD", "OMR", "TND"]
    assert {code: minor_unit_exponent(code) for code in zero} == dict.fromkeys(zero, 0)
    assert {code: minor_unit_exponent(code.lower()) for code in three} == dict.fromkeys(three, 3)
    assert [minor_unit_exponent(code) for code in ("usd", "eur", "gbp", "chf", "huf", "isk")] == [2] * 6


@pytest.mark.parametrize(
    ("text", "currency", "amount"),
    [
        ("25.00", "usd", 2500),
        ("25", "usd", 2500),
        ("25.5", "eur", 2550),
        (" 1,234.56 ", "usd", 123456),
        ("500", "jpy", 500),
        ("1,000", "jpy", 1000),
        ("1.250", "kwd", 1250),
        ("0.01", "usd", 1),
    ],
)
def test_a_typed_amount_in_major_units_becomes_minor_units(text, currency, amount):
    assert money_parse(text, currency) == amount
    assert money_parse(money_format(amount, currency).strip("$€¥£").split(" ")[0], currency) == amount


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("10.5", "jpy", "JPY has no decimal places: '10.5' is not an amount of it."),
        ("10.001", "usd", "USD has 2 decimal places: '10.001' is not an amount of it."),
        ("-5", "usd", "'-5' is not an amount such as 25.00."),
        ("ten", "usd", "'ten' is not an amount such as 25.00."),
        ("1e3", "usd", "'1e3' is not an amount such as 25.00."),
        ("10.", "usd", "'10.' is not an amount such as 25.00."),
        ("", "usd", "'' is not an amount such as 25.00."),
        ("١٠", "usd", "'١٠' is not an amount such as 25.00."),
    ],
)
def test_anything_else_is_refused_with_what_is_wrong(text, currency, message):
    with pytest.raises(ValueError, match="amount") as refused:
        money_parse(text, currency)
    assert str(refused.value) == message
