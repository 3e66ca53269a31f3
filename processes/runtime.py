"""Job runtime: a bounded worker pool per server process, restart recovery and result-layer cleanup."""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from core.config import ProcessesConfig
from core.db import Database
from core.errors import OGCError
from processes import results
from processes.base import Context, Processor
from processes.errors import JobDismissed
from processes.jobs import Job, JobStore

LOGGER = logging.getLogger(__name__)
MAINTENANCE_S = 30.0


class Runtime:
    """Runs jobs outside the request thread; all state is in meta.jobs."""

    def __init__(self, dsn: str, config: ProcessesConfig, processors: dict[str, Processor]) -> None:
        self.config = config
        self.processors = processors
        self.db = Database(dsn, config.workers + 4, 600_000, read_only=False, application_name="sejong-processes")
        self.store = JobStore(self.db)
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._futures: dict[str, Future[dict[str, Any] | None]] = {}

    def start(self) -> None:
        """Create tables, fail jobs orphaned by a dead process and start the maintenance thread."""
        self.store.ensure()
        results.ensure(self.db)
        self.maintain()
        threading.Thread(target=self._loop, name="processes-maintenance", daemon=True).start()

    def maintain(self) -> None:
        """Fail orphaned jobs and drop expired result layers."""
        dead = self.store.fail_orphans()
        if dead:
            LOGGER.warning("marked %d orphaned job(s) failed: %s", len(dead), ", ".join(dead))
        dropped = results.cleanup(self.db)
        if dropped:
            LOGGER.info("dropped %d expired result layer(s)", dropped)

    def _loop(self) -> None:
        while not self._stop.wait(MAINTENANCE_S):
            try:
                self.maintain()
            except Exception:
                LOGGER.exception("processes maintenance failed")

    def pool(self) -> ThreadPoolExecutor:
        """The worker pool of this process (re-created after a fork)."""
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="job")
                self._pid = os.getpid()
            return self._pool

    def submit(self, job: Job, inputs: dict[str, Any], services: dict[str, Any]) -> Future[dict[str, Any] | None]:
        """Queue a registered job."""
        future = self.pool().submit(self._run, job.job_id, job.process_id, inputs, services)
        with self._lock:
            self._futures[job.job_id] = future
        future.add_done_callback(lambda _: self._forget(job.job_id))
        return future

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._futures.pop(job_id, None)

    def future(self, job_id: str) -> Future[dict[str, Any] | None] | None:
        """The future of a job queued or running in this process (None once it has ended)."""
        with self._lock:
            return self._futures.get(job_id)

    def _run(self, job_id: str, process_id: str, inputs: dict[str, Any],
             services: dict[str, Any]) -> dict[str, Any] | None:
        if not self.store.start(job_id):
            return None
        proc = self.processors[process_id]
        ctx = Context(db=self.db, config=self.config, job_id=job_id, services=services,
                      report=lambda p, m: self.store.progress(job_id, p, m))
        t0 = time.perf_counter()
        try:
            outputs = proc.run(inputs, ctx)
        except JobDismissed:
            LOGGER.info("job %s stopped: dismissed", job_id)
            results.drop_job_layers(self.db, job_id)
            return None
        except OGCError as err:
            self.store.fail(job_id, err.description, err.body())
            raise
        except Exception as err:
            LOGGER.exception("job %s (%s) failed", job_id, process_id)
            msg = f"the process failed: {type(err).__name__}; see the server log for job {job_id}"
            self.store.fail(job_id, msg, OGCError(msg).body())
            raise OGCError(msg) from err
        if not self.store.finish(job_id, outputs, time.perf_counter() - t0):
            results.drop_job_layers(self.db, job_id)
            return None
        return outputs

    def shutdown(self) -> None:
        """Stop the maintenance thread and the pool (tests)."""
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.db.close()
