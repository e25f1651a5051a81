"""The emulator's notion of "now".

Read at call time from a base callable (``time.time`` by default, so ``time-machine`` in a test moves the
emulator together with the code under test) plus an offset that ``advance`` grows, for tests and demos that
jump ahead (renewals, trial ends) without patching time globally.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def _wall_time() -> float:
    # Looked up on every call rather than bound once, so a patched ``time.time`` is always honoured.
    return time.time()


class Clock:
    def __init__(self, base: Callable[[], float] | None = None, *, offset: float = 0.0) -> None:
        self._base = base or _wall_time
        self._offset = offset
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        return self._offset

    def now(self) -> int:
        """Unix seconds, as Stripe's ``created`` fields are."""
        return int(self._base() + self._offset)

    def advance(self, seconds: float) -> int:
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()

    def reset(self) -> None:
        self.set_offset(0.0)

    def set_offset(self, offset: float) -> None:
        with self._lock:
            self._offset = offset
