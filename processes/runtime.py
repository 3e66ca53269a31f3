"""Job runtime: a bounded worker pool per server process that runs its own jobs and claims queued ones of any
instance (processes.jobs), restart recovery and result-layer cleanup."""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg2
from prometheus_client import Histogram

from core.config import ProcessesConfig
from core.db import Database
from core.errors import Busy, OGCError, TooManyRequests
from processes import results
from processes.base import Context, Processor
from processes.errors import JobDismissed
from processes.jobs import Job, JobStore

LOGGER = logging.getLogger(__name__)
MAINTENANCE_S = 30.0
JOB_SECONDS = Histogram("sejong_job_duration_seconds", "Run time of jobs that ended in this process",
                        ["process", "status"], buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
ServicesFor = Callable[[Job], dict[str, Any]]  # the services of a claimed job (its owner as the caller)


class Runtime:
    """Runs jobs outside the request thread; all state is in meta.jobs."""

    def __init__(self, dsn: str, config: ProcessesConfig, processors: dict[str, Processor],
                 services_for: ServicesFor | None = None) -> None:
        self.config = config
        self.processors = processors
        self.services_for = services_for  # None: this process runs only the jobs submitted to it
        self.db = Database(dsn, config.workers + 4, 600_000, read_only=False, application_name="sejong-processes")
        self.store = JobStore(self.db, config.lease_s)
        self._pool: ThreadPoolExecutor | None = None
        self._sync_pool: ThreadPoolExecutor | None = None  # max_sync threads: a sync job never waits behind a queue
        self._pid = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._futures: dict[str, Future[dict[str, Any] | None]] = {}
        self._async: set[str] = set()  # held jobs that take a worker of the pool (not the synchronous ones)
        self._wake = threading.Event()  # a worker became free: claim a queued job now
        self.sync_slots = threading.BoundedSemaphore(config.max_sync)

    def start(self) -> None:
        """Create tables, fail jobs orphaned by a dead process and start the maintenance thread."""
        self.store.ensure()
        results.ensure(self.db)
        self.maintain()
        threading.Thread(target=self._loop, name="processes-maintenance", daemon=True).start()
        threading.Thread(target=self._heartbeat, name="processes-heartbeat", daemon=True).start()
        if self.services_for is not None:
            threading.Thread(target=self._dispatch, name="processes-dispatch", daemon=True).start()

    def maintain(self) -> None:
        """Fail orphaned jobs and drop expired result layers."""
        dead, requeued = self.store.settle_orphans()
        if dead:
            LOGGER.warning("marked %d orphaned job(s) failed: %s", len(dead), ", ".join(dead))
        if requeued:
            LOGGER.warning("queued %d job(s) of a stopped server again: %s", len(requeued), ", ".join(requeued))
            self._wake.set()
        dropped = results.cleanup(self.db)
        if dropped:
            LOGGER.info("dropped %d expired result layer(s)", dropped)
        deleted = self.store.delete_older_than(self.config.job_retention_hours)
        if deleted:
            LOGGER.info("deleted %d job(s) past the %.0f h retention", deleted, self.config.job_retention_hours)

    def _heartbeat(self) -> None:
        """Renew the leases of the jobs this process holds, three times per lease."""
        while not self._stop.wait(self.config.lease_s / 3):
            try:
                self.store.renew(self.held())
            except Exception:
                LOGGER.exception("could not renew job leases")

    def held(self) -> list[str]:
        """Jobs queued or running in this process."""
        with self._lock:
            return list(self._futures)

    def admit(self) -> None:
        """429 when the jobs this process holds plus those queued for any instance reach max_queued."""
        if self.store.active_here_or_queued() >= self.config.max_queued:
            raise TooManyRequests(f"{self.config.max_queued} jobs are already queued or running here; retry later")

    def free_workers(self) -> int:
        """Workers of the job pool not taken by a held job."""
        with self._lock:
            return self.config.workers - len(self._async)

    def _dispatch(self) -> None:
        """Claim queued jobs of any instance while a worker is free; poll every processes.claim_poll_s."""
        while not self._stop.is_set():
            self._wake.wait(self.config.claim_poll_s)
            self._wake.clear()
            try:
                while not self._stop.is_set() and self.free_workers() > 0 and self.claim_one():
                    pass
            except Exception as err:
                LOGGER.warning("could not claim queued jobs (%s); retrying", str(err).strip())

    def claim_one(self) -> bool:
        """Claim the oldest queued job and start it here; False when none is queued."""
        assert self.services_for is not None
        claimed = self.store.claim()
        if claimed is None:
            return False
        job, stored = claimed
        outputs = stored.pop("_outputs", None)
        try:
            if job.process_id not in self.processors:
                raise OGCError(f"process {job.process_id!r} is not offered by the instance that claimed this job")
            services = self.services_for(job)
            inputs = self.processors[job.process_id].validate(stored, services)
        except Exception as err:
            body = err.body() if isinstance(err, OGCError) else OGCError(f"inputs no longer valid: {err}").body()
            self._settle(lambda: self.store.fail(job.job_id, str(body["description"]), body))
            return True
        if outputs:
            inputs["_outputs"] = outputs
        self._start(job, inputs, services, sync=False)
        LOGGER.info("claimed queued job %s (%s)", job.job_id, job.process_id)
        return True

    def _loop(self) -> None:
        while not self._stop.wait(MAINTENANCE_S):
            try:
                self.maintain()
            except Exception:
                LOGGER.exception("processes maintenance failed")

    def pool(self, sync: bool = False) -> ThreadPoolExecutor:
        """The worker pool of this process, or its own pool of synchronous executions (both re-created after a
        fork)."""
        with self._lock:
            if self._pid != os.getpid():
                self._pool = self._sync_pool = None
                self._pid = os.getpid()
            if sync:
                if self._sync_pool is None:
                    self._sync_pool = ThreadPoolExecutor(self.config.max_sync, thread_name_prefix="sync-job")
                return self._sync_pool
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="job")
            return self._pool

    def submit(self, job: Job, inputs: dict[str, Any], services: dict[str, Any],
               sync: bool = False) -> Future[dict[str, Any] | None]:
        """Run a registered job this process holds; `sync` (the caller holds one of sync_slots): run it in the
        synchronous pool and give the slot back when the job ends, not when the request stops waiting. An
        asynchronous job finding every worker taken goes to the shared queue, where any instance may claim it
        (the returned future is then already done, with None)."""
        if (not sync and self.services_for is not None and self.free_workers() <= 0
                and self.store.release(job.job_id, list(inputs.get("_outputs") or []))):
            queued: Future[dict[str, Any] | None] = Future()
            queued.set_result(None)
            return queued
        return self._start(job, inputs, services, sync)

    def _start(self, job: Job, inputs: dict[str, Any], services: dict[str, Any],
               sync: bool) -> Future[dict[str, Any] | None]:
        try:
            future = self.pool(sync).submit(self._run, job.job_id, job.process_id, inputs, services)
        except BaseException:
            if sync:
                self.sync_slots.release()
            raise
        if sync:
            future.add_done_callback(lambda _: self.sync_slots.release())
        with self._lock:
            self._futures[job.job_id] = future
            if not sync:
                self._async.add(job.job_id)
        future.add_done_callback(lambda _: self._forget(job.job_id))
        return future

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._futures.pop(job_id, None)
            freed = job_id in self._async
            self._async.discard(job_id)
        if freed:
            self._wake.set()

    def future(self, job_id: str) -> Future[dict[str, Any] | None] | None:
        """The future of a job queued or running in this process (None once it has ended)."""
        with self._lock:
            return self._futures.get(job_id)

    def _run(self, job_id: str, process_id: str, inputs: dict[str, Any],
             services: dict[str, Any]) -> dict[str, Any] | None:
        """Run one job; whatever happens (the database included), the job ends in a final state."""
        try:
            return self._run_job(job_id, process_id, inputs, services)
        except JobDismissed:
            LOGGER.info("job %s stopped: dismissed", job_id)
            self._settle(lambda: results.drop_job_layers(self.db, job_id))
            return None
        except OGCError as err:
            description, body = err.description, err.body()
            self._settle(lambda: self.store.fail(job_id, description, body))
            raise
        except Exception as err:
            LOGGER.exception("job %s (%s) failed", job_id, process_id)
            msg = f"the process failed: {type(err).__name__}; see the server log for job {job_id}"
            self._settle(lambda: self.store.fail(job_id, msg, OGCError(msg).body()))
            raise OGCError(msg) from err

    def _run_job(self, job_id: str, process_id: str, inputs: dict[str, Any],
                 services: dict[str, Any]) -> dict[str, Any] | None:
        if not self.store.start(job_id):
            return None
        proc = self.processors[process_id]
        ctx = Context(db=self.db, config=self.config, job_id=job_id, services=services,
                      report=lambda p, m: self.store.progress(job_id, p, m))
        t0 = time.perf_counter()
        try:
            outputs = proc.run(inputs, ctx)
        except BaseException:
            JOB_SECONDS.labels(process_id, "failed").observe(time.perf_counter() - t0)
            raise
        JOB_SECONDS.labels(process_id, "successful").observe(time.perf_counter() - t0)
        if not self.store.finish(job_id, outputs, time.perf_counter() - t0):
            results.drop_job_layers(self.db, job_id)
            return None
        return outputs

    @staticmethod
    def _settle(record: Callable[[], object], attempts: int = 5) -> None:
        """Record a job's final state, retrying while the database is briefly unavailable or busy."""
        for attempt in range(attempts):
            try:
                record()
                return
            except (psycopg2.OperationalError, psycopg2.InterfaceError, Busy):
                if attempt == attempts - 1:
                    LOGGER.exception("could not record a job's final state; maintenance will fail it later")
                    return
                time.sleep(0.2 * 2**attempt)

    def shutdown(self) -> None:
        """Stop taking jobs: held jobs not started yet go back to the shared queue, running ones are recorded as
        failed (their threads stop at their next progress report, within about a second); stop the threads."""
        self._stop.set()
        self._wake.set()
        held = self.held()
        if held and self.services_for is not None:  # not started yet: another instance may run them
            requeued = self.store.requeue_unstarted(held)
            held = [job_id for job_id in held if job_id not in requeued]
        if held:
            msg = "the server stopped (restart or shutdown) before this job finished; submit it again"
            err = OGCError(msg).body()
            for job_id in held:
                self._settle(functools.partial(self.store.fail, job_id, msg, err))
            LOGGER.warning("shutdown: %d job(s) recorded as failed", len(held))
        for pool in (self._pool, self._sync_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        self.db.close()
