"""Progress lines on stderr for long loads."""

from __future__ import annotations

import sys
import time


class Progress:
    """Prints 'label: rows done / total' every second (at most twice a second at `every`-row marks)."""

    def __init__(self, label: str, total: int | None = None, every: int = 5000) -> None:
        self.label = label
        self.total = total
        self.every = every
        self.done = 0
        self._last = time.monotonic()
        self._printed = False

    def tick(self, n: int = 1) -> None:
        """Count n more rows; print when due."""
        self.done += n
        now = time.monotonic()
        if now - self._last >= 1.0 or (self.done % self.every < n and now - self._last >= 0.5):
            self._last = now
            self._emit()

    def _emit(self) -> None:
        total = f" / {self.total:,}" if self.total else ""
        print(f"{self.label}: {self.done:,}{total} rows", file=sys.stderr, flush=True)
        self._printed = True

    def finish(self) -> None:
        """Print the final count if anything was printed before."""
        if self._printed:
            self._emit()
