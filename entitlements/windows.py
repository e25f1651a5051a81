"""Usage windows as answers see them (`selectors.feature_answer`, the snapshot endpoint, `explain`): calendar
windows in UTC, each starting on a whole minute, hour, day or week (Monday 00:00) and ending when the next one
starts (`catalog.rules.WINDOW_SECONDS`). What a window's counter says (`services.windows`) counts only while its
window is the current one: a counter whose window has passed answers 0 used, without any write.
"""

import math
from datetime import UTC, datetime
from typing import Any

from catalog.rules import WINDOW_SECONDS

_MONDAY = 4 * 86_400  # the Unix epoch was a Thursday: weeks start 4 days after it


def window_bounds(window: str, at: float) -> tuple[float, float]:
    """(start, end) in Unix seconds of the `window` holding the instant `at`."""
    seconds = WINDOW_SECONDS[window]
    offset = _MONDAY if window == "week" else 0
    start = (int(at) - offset) // seconds * seconds + offset
    return float(start), float(start + seconds)


def iso_at(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def windows_answer(
    windows: list[list[Any]], counted: dict[str, list[Any]], quantity: int, now: float
) -> tuple[list[dict[str, Any]], str | None, float | None]:
    """Each window's `{window, limit, used, held, remaining, resets_at}` at `now` (Unix seconds), from the
    feature's windows ([[name, limit], …]) and what their counters hold ({name: [window start, used, held]});
    and, when `quantity` more does not fit, the window that refuses it for longest and when it frees up (its end;
    None when `quantity` is more than the window ever allows)."""
    answers: list[dict[str, Any]] = []
    binding: str | None = None
    frees: float | None = None
    for name, limit in windows:
        start, end = window_bounds(name, now)
        stored = counted.get(name)
        used, held = (int(stored[1]), int(stored[2])) if stored is not None and stored[0] == start else (0, 0)
        answers.append(
            {
                "window": name,
                "limit": limit,
                "used": used - held,
                "held": held,
                "remaining": max(limit - used, 0),
                "resets_at": iso_at(end),
            }
        )
        if used + quantity > limit:
            when = end if quantity <= limit else None
            if binding is None or (frees is not None and (when is None or when > frees)):
                binding, frees = name, when
    return answers, binding, frees


def retry_after(frees: float | None, now: float) -> int | None:
    """Whole seconds from `now` until `frees` (at least 1), or None."""
    return None if frees is None else max(1, math.ceil(frees - now))
