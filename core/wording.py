"""How messages put a word in an English sentence: the indefinite article of a type's name ("an allocation
feature", "a metered feature")."""


def with_article(word: str) -> str:
    """`word` after "a" or "an", by how it is spoken: every name it is given (feature and grant types) starts with
    a vowel sound exactly when it starts with a vowel letter."""
    return f"{'an' if word[:1].lower() in ('a', 'e', 'i', 'o', 'u') else 'a'} {word}"
