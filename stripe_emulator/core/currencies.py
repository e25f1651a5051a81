"""Currencies as Stripe counts them: the zero-decimal ones have no minor unit (https://docs.stripe.com/currencies);
and how Stripe rounds an amount to the minor unit."""

ZERO_DECIMAL = frozenset(
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


def round_half_away(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` to the nearest minor unit, halves away from zero, in exact integers: how
    Stripe rounds prorations and tax amounts."""
    sign = -1 if (numerator < 0) != (denominator < 0) else 1
    n, d = abs(numerator), abs(denominator)
    return sign * ((2 * n + d) // (2 * d))
