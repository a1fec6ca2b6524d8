"""A tiny progress line on stderr, for long commands. No dependency."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Prints ``label: done/total (rate/s)``; redraws in place on a terminal,
    and prints at most one line every few seconds otherwise (CI logs)."""

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None,
                 every: float = 0.2) -> None:
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = every if self.tty else 5.0
        self.start = self._last = time.monotonic()
        self.done = 0

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._draw(end="\r" if self.tty else "\n")

    def finish(self) -> None:
        self._draw(end="\n")

    def _draw(self, end: str) -> None:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        total = f"/{self.total}" if self.total is not None else ""
        self.stream.write(f"{self.label}: {self.done}{total} ({self.done / elapsed:,.0f}/s){end}")
        self.stream.flush()
