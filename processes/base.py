"""Process plugin contract: pygeoapi BaseProcessor plus input validation and a job context."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from psycopg2.pool import ThreadedConnectionPool
from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

from core.config import NoDatabase, ProcessesConfig, database_url
from core.db import Database
from core.errors import OGCError
from processes.errors import InputError, JobDismissed

PROGRESS_INTERVAL_S = 1.0


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
        """Record progress (at most one write a second, the first and 100 % always); raises JobDismissed when the
        job was dismissed meanwhile (so a dismissal is noticed within about a second). `force` is accepted for
        callers that mark a step; the rate limit applies to them too."""
        now = time.monotonic()
        if self.report is None or (self._last and now - self._last < PROGRESS_INTERVAL_S and percent < 100):
            return
        self._last = now
        status = self.report(percent, message)
        if status != "running":  # dismissed, deleted, or failed by a shutting-down server: stop here
            raise JobDismissed(self.job_id)

    def sleep(self, seconds: float) -> None:
        """Sleep while checking for dismissal about 5 times a second."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(0.2, left))
            self.progress(int(100 * (1 - left / seconds)) if seconds else 0, "waiting", force=False)


class _StandaloneDatabase(Database):
    """The database of a run outside our server: DATABASE_URL, resolved only when a process connects."""

    def __init__(self) -> None:
        super().__init__("", 2, 600_000, read_only=False, application_name="sejong-pygeoapi")

    def _get_pool(self) -> ThreadedConnectionPool:
        if not self.dsn:
            try:
                self.dsn = os.environ.get("DATABASE_URL") or database_url()
            except (NoDatabase, OSError) as err:
                raise ProcessorExecuteError(f"this process needs the database: {err}") from err
        return super()._get_pool()


class _StandaloneServices(dict[str, Any]):
    """Services outside our server: asking for a missing one (the layer registry) is a clear pygeoapi error."""

    def __init__(self, process_id: str, **services: Any) -> None:
        super().__init__(services)
        self.process_id = process_id

    def __missing__(self, key: str) -> Any:
        raise ProcessorExecuteError(f"process {self.process_id!r} needs the Sejong map server's {key!r} (its layer "
                                    "registry); run it through that server's /processes instead of pygeoapi")


class Processor(BaseProcessor):  # type: ignore[misc]
    """A process: PROCESS_METADATA (with `example`), validate() in the request, run() in a worker.

    It is a pygeoapi process plugin too (`processor: {name: processes.echo.EchoProcessor}`): see execute().
    """

    PROCESS_METADATA: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: ProcessesConfig | dict[str, Any] | None = None) -> None:
        """config: ours, or the processor definition {"name": dotted path} pygeoapi's plugin loader passes."""
        definition = config if isinstance(config, dict) else {"name": self.PROCESS_METADATA["id"]}
        super().__init__(definition, self.PROCESS_METADATA)
        self.supports_outputs = True
        self.config = config if isinstance(config, ProcessesConfig) else ProcessesConfig()

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

    def execute(self, data: dict[str, Any], outputs: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Run as a pygeoapi plugin: no job (progress is a no-op), a short-lived pool on DATABASE_URL if needed."""
        db = _StandaloneDatabase()
        services = _StandaloneServices(self.id, read_db=db, base_url="")
        try:
            clean = self.validate(dict(data), services)
            if outputs:
                clean["_outputs"] = list(outputs)
            ctx = Context(db=db, config=self.config, job_id=f"pygeoapi-{uuid.uuid4().hex}", services=services)
            return "application/json", self.run(clean, ctx)
        except OGCError as err:
            raise ProcessorExecuteError(err.description) from err
        finally:
            db.close()
