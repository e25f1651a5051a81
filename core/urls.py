"""URL helpers: API routes answer with and without a trailing slash, never redirecting a POST."""

from typing import Any

from django.urls import URLPattern, path


def route(pattern: str, view: Any, name: str) -> list[URLPattern]:
    """The same view at `pattern` and `pattern/`."""
    return [path(pattern, view, name=name), path(f"{pattern}/", view)]


def schema_without_slash_variants(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """drf-spectacular hook: document each route once, without its trailing-slash twin."""
    return [endpoint for endpoint in endpoints if not endpoint[0].endswith("/") or endpoint[0] == "/"]
