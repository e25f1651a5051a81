"""What a logger writes, as production writes it: the context and redaction filters, then the JSON formatter."""

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from core.logging import JsonFormatter, RedactingFilter, RequestContextFilter


@contextmanager
def logged(name: str, level: int) -> Iterator[io.StringIO]:
    """The lines logger `name` writes at `level` and above while the block runs (the logger opened to `level`:
    the test settings log Django's errors only)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    previous_level = logger.level
    logger.setLevel(level)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
