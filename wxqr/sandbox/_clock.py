"""The sandbox's virtual clock: every expiry, rate window and quota period reads it."""

from __future__ import annotations

import threading
import time

__all__ = ["VirtualClock"]

#: WeChat's days and months are Beijing-time (UTC+8) calendar periods.
_BEIJING_OFFSET = 8 * 3600


class VirtualClock:
    """A clock that tests move forward by hand.

    By default it starts at the real time and keeps ticking with it (so a long-running served
    sandbox behaves like WeChat), plus whatever :meth:`advance` added. ``frozen=True`` stops the
    real-time ticking: ``now()`` then only changes through :meth:`advance` / :meth:`set`, which
    makes boundary tests (a token at exactly 7200 s) exact.

    Args:
        start: the Unix time the clock starts at; defaults to ``time.time()``.
        frozen: when true, time passes only through :meth:`advance` and :meth:`set`.
    """

    def __init__(self, start: float | None = None, *, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self._start = time.time() if start is None else float(start)
        self._started_monotonic = time.monotonic()
        self._offset = 0.0
        self.frozen = frozen

    def now(self) -> float:
        """Return the current virtual Unix time, in seconds."""
        with self._lock:
            elapsed = 0.0 if self.frozen else time.monotonic() - self._started_monotonic
            return self._start + elapsed + self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (must not be negative); return the new time."""
        if seconds < 0:
            raise ValueError("a virtual clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()

    def set(self, timestamp: float) -> None:
        """Jump to the Unix time ``timestamp`` (forward or backward)."""
        current = self.now()
        with self._lock:
            self._offset += timestamp - current

    def day(self) -> int:
        """The current Beijing-time calendar day, as a day number (daily quotas reset on it)."""
        return int((self.now() + _BEIJING_OFFSET) // 86400)

    def month(self) -> tuple[int, int]:
        """The current Beijing-time ``(year, month)`` (monthly quotas reset on it)."""
        tm = time.gmtime(self.now() + _BEIJING_OFFSET)
        return tm.tm_year, tm.tm_mon
