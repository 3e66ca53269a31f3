"""Process plugin contract: pygeoapi BaseProcessor plus input validation and a job context."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pygeoapi.process.base import BaseProcessor

from core.config import ProcessesConfig
from core.db import Database
from processes.errors import InputError, JobDismissed


@dataclass
class Context:
    """What a running process may use: the database, config, job id and a progress reporter."""

    db: Database
    config: ProcessesConfig
    job_id: str
    services: dict[str, Any] = field(default_factory=dict)
    report: Callable[[int, str], str | None] | None = None
    _last: float = 0.0

    def progress(self, percent: int, message: str, force: bool = True) -> None:
        """Record progress; raises JobDismissed when the job was dismissed meanwhile."""
        now = time.monotonic()
        if self.report is None or (not force and now - self._last < 0.25):
            return
        self._last = now
        status = self.report(percent, message)
        if status in (None, "dismissed"):
            raise JobDismissed(self.job_id)

    def sleep(self, seconds: float) -> None:
        """Sleep while checking for dismissal about 5 times a second."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(0.2, left))
            self.progress(int(100 * (1 - left / seconds)) if seconds else 0, "waiting", force=False)


class Processor(BaseProcessor):  # type: ignore[misc]
    """A process: PROCESS_METADATA (with `example`), validate() in the request, run() in a worker."""

    PROCESS_METADATA: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: ProcessesConfig | None = None) -> None:
        super().__init__({"name": self.PROCESS_METADATA["id"]}, self.PROCESS_METADATA)
        self.config = config or ProcessesConfig()

    @property
    def id(self) -> str:
        """Process id."""
        return str(self.PROCESS_METADATA["id"])

    def validate(self, inputs: dict[str, Any], services: dict[str, Any]) -> dict[str, Any]:
        """Check and normalise inputs (may read the database); raise InputError with what to fix."""
        known = set(self.PROCESS_METADATA["inputs"])
        unknown = sorted(set(inputs) - known)
        if unknown:
            raise InputError(f"unknown input(s) {', '.join(unknown)}; {self.id} accepts: {', '.join(sorted(known))}")
        for name, spec in self.PROCESS_METADATA["inputs"].items():
            if spec.get("minOccurs", 1) > 0 and name not in inputs:
                raise InputError(f"input {name!r} is required: {spec.get('description', '')}")
        return inputs

    def run(self, inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
        """Compute the outputs {output id: value}."""
        raise NotImplementedError
