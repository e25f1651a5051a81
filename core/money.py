"""Money as people read it: integer minor units of a currency → text such as "$49.00", "¥500" or "12.500 KWD".

Amounts are stored in the currency's smallest unit, as Stripe takes them. How many of those make a major unit
follows Stripe's rules (https://docs.stripe.com/currencies#minor-units): zero-decimal currencies count whole
units, five currencies count thousandths, every other currency hundredths. Only display lives here: the digits
come from integer arithmetic, never a float. `money_parse` reads what a person typed back into minor units.

Format: USD, EUR, GBP and JPY show their symbol before the number ("$1,234.50", "-€12.50", "¥500"); every other
currency shows its upper-case ISO code after it ("49.00 CHF", "-1.250 KWD"). Thousands are grouped with commas.
"""

ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
THREE_DECIMAL_CURRENCIES = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}


def minor_unit_exponent(currency: str) -> int:
    """How many decimal places the currency's minor unit has: 0 (JPY), 3 (KWD) or 2 (USD, and any other)."""
    code = currency.lower()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def money_format(amount: int, currency: str) -> str:
    """`amount` minor units of `currency` (any case) as text: `money_format(4900, "usd") == "$49.00"`."""
    exponent = minor_unit_exponent(currency)
    whole, fraction = divmod(abs(amount), 10**exponent)
    number = f"{whole:,}" + (f".{fraction:0{exponent}d}" if exponent else "")
    sign = "-" if amount < 0 else ""
    symbol = SYMBOLS.get(currency.lower())
    if symbol:
        return f"{sign}{symbol}{number}"
    return f"{sign}{number} {currency.upper()}"


def money_parse(text: str, currency: str) -> int:
    """An amount typed in major units of `currency` → minor units: `money_parse("25.50", "usd") == 2550`,
    `money_parse("1,000", "jpy") == 1000`. Raises ValueError for anything else: a sign, letters, or more decimal
    places than the currency has (¥ has none: "10.5" yen is not an amount)."""
    cleaned = text.strip().replace(",", "")
    whole, dot, fraction = cleaned.partition(".")
    if (
        not whole.isdigit()
        or (dot and not fraction.isdigit())
        or not whole.isascii()
        or not fraction.isascii()
    ):
        raise ValueError(f"{text.strip()!r} is not an amount such as 25.00.")
    exponent = minor_unit_exponent(currency)
    if len(fraction) > exponent:
        places = f"{exponent} decimal places" if exponent else "no decimal places"
        raise ValueError(f"{currency.upper()} has {places}: {text.strip()!r} is not an amount of it.")
    return int(whole) * 10**exponent + (int(fraction.ljust(exponent, "0")) if exponent else 0)
