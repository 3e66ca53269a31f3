"""Siting solves in a child process under an address-space limit, with progress and cancellation.

The server is multi-threaded, so it never forks: children come from a ``forkserver`` (started once by exec,
single-threaded) that has already imported numpy, scipy, HiGHS and the solvers, so a child starts in
milliseconds. Protocol on one duplex pipe:

1. child -> parent ``("ready", address space in bytes)`` once ``RLIMIT_AS`` is set (its size after imports plus
   the budget);
2. parent -> child ``(model, keyword arguments, [(name, shape, dtype)])``, then the raw bytes of every array
   (written and read in place: no pickled copy of the cost matrix on either side);
3. child -> parent ``("progress", percent, message)`` any number of times, then one of ``("result",
   SitingResult, peak)``, ``("infeasible", message, demand)``, ``("input", message)``, ``("memory", message)``
   or ``("error", type name, traceback)``.

A child that dies without an answer (the kernel's OOM killer, an abort in HiGHS on ``bad_alloc``) fails its job
naming the memory limit; the server itself never allocates the model. As with any non-fork start method, each
child runs the parent's main script as ``__mp_main__`` (gunicorn's and pytest's are guarded and cheap).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import resource
import signal
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import highspy
import numpy as np

from processes import siting
from processes.errors import InputError

LOGGER = logging.getLogger(__name__)
MODELS: dict[str, Callable[..., siting.SitingResult]] = {
    "lscp": siting.lscp, "mclp": siting.mclp, "p_median": siting.p_median, "p_center": siting.p_center,
    "capacitated_p_median": siting.capacitated_p_median, "max_attendance": siting.max_attendance}
MEMORY_EXIT = 86  # exit code of a child that ran out of memory and could not even say so
IDLE_S = 1.0  # while the child is silent, the parent checks for dismissal this often
CHUNK = 1 << 26  # bytes per pipe write of an array
_START = threading.Lock()  # Process.start() is not thread-safe (multiprocessing's child list)
_M_ARENA_MAX = -8
# one BLAS thread per child: every OpenBLAS thread maps its own buffer, which would count against RLIMIT_AS
_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_started: list[bool] = []


class SolveLimitError(InputError):
    """A solve outgrew its child's memory limit (or its wall-clock margin): a 400 saying how to shrink it."""


class SolverCrashed(Exception):
    """The child process ended without an answer for another reason (a bug, not the request)."""


def _vm_bytes(field: str = "VmSize") -> int:
    """This process's address space (or VmPeak, VmHWM...) in bytes, from /proc."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _exit_with(parent: multiprocessing.process.BaseProcess) -> None:
    parent.join()
    os._exit(1)


def _child(conn: Connection, limit_bytes: int) -> None:
    """Child process main: limit the address space, receive the instance, solve, answer (see the module doc)."""
    with contextlib.suppress(OSError, AttributeError):  # one malloc arena: each more reserves 64 MB of address space
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, 1)
    parent = multiprocessing.parent_process()
    if parent is not None:  # the server died (SIGKILL): stop at once instead of solving for nobody
        threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()
    with contextlib.suppress(OSError):  # HiGHS prints its banner on stdout in every new process
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    warm = highspy.Highs()  # start HiGHS's worker threads now: their stacks belong to the base, not the budget
    warm.setOptionValue("output_flag", False)
    warm.run()
    del warm
    base = _vm_bytes()
    resource.setrlimit(resource.RLIMIT_AS, (base + limit_bytes, base + limit_bytes))
    try:
        conn.send(("ready", base))
        model, kwargs, specs = conn.recv()
        arrays: dict[str, Any] = {}
        for name, shape, dtype in specs:
            arr = np.empty(shape, dtype=dtype)
            view = memoryview(arr.reshape(-1).view(np.uint8)) if arr.size else memoryview(b"")
            done = 0
            while done < len(view):
                done += conn.recv_bytes_into(view[done:])
            arrays[name] = arr
        last = [0.0]

        def progress(percent: float, message: str) -> None:
            now = time.monotonic()
            if percent >= 100 or now - last[0] >= 0.2:
                last[0] = now
                conn.send(("progress", percent, message))

        res = MODELS[model](**arrays, **kwargs, progress=progress)
        peak = _vm_bytes("VmPeak") - base
        conn.send(("result", res, {"vm_peak": peak, "rss_peak": _vm_bytes("VmHWM"), "vm_base": base,
                                   "limit_reached": peak >= limit_bytes - 2**20}))
    except MemoryError as err:
        try:
            conn.send(("memory", f"{type(err).__name__}: {err}"))
        except BaseException:
            os._exit(MEMORY_EXIT)
    except siting.SitingInfeasibleError as err:
        conn.send(("infeasible", str(err), err.demand))
    except siting.SitingInputError as err:
        conn.send(("input", str(err)))
    except BaseException as err:  # every failure is reported to the parent
        if isinstance(err, (BrokenPipeError, EOFError)):
            os._exit(1)  # the parent is gone or gave up
        try:
            conn.send(("error", type(err).__name__, traceback.format_exc()))
        except MemoryError:
            os._exit(MEMORY_EXIT)
    finally:
        conn.close()


def _context() -> multiprocessing.context.ForkServerContext:
    """The forkserver context, its server started (once) with single-threaded BLAS and this module preloaded."""
    ctx = multiprocessing.get_context("forkserver")
    with _START:
        if not _started:
            ctx.set_forkserver_preload([__name__])
            saved = {k: os.environ.get(k) for k in _ONE_THREAD}
            os.environ.update(_ONE_THREAD)  # read by the fork server's numpy import only (this one has its BLAS)
            try:
                multiprocessing.forkserver.ensure_running()
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            _started.append(True)
    return ctx


def _send_arrays(conn: Connection, arrays: dict[str, np.ndarray]) -> None:
    for arr in arrays.values():
        flat = arr.reshape(-1).view(np.uint8)
        for start in range(0, flat.size, CHUNK):
            conn.send_bytes(memoryview(flat[start:start + CHUNK]))


def solve(model: str, arrays: dict[str, np.ndarray], kwargs: dict[str, Any], *, limit_mb: float,
          progress: Callable[[float, str], None], wall_s: float, hint: str = "") -> siting.SitingResult:
    """Run ``processes.siting.<model>(**arrays, **kwargs)`` in a child limited to ``limit_mb`` MB more address space.

    ``progress(percent, message)`` gets the solver's progress, and is called again with the last values every
    :data:`IDLE_S` seconds while the child is silent: an exception from it (``JobDismissed``) kills the child
    and propagates. A child that runs out of memory (or dies without an answer) raises
    :class:`SolveLimitError` naming the limit and ``hint``; one that exceeds ``wall_s`` is killed.
    Solver input errors are re-raised as the ``siting`` exceptions the in-process call would raise.
    """
    if model not in MODELS:
        raise ValueError(f"unknown siting model {model!r}")
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    ctx = _context()
    parent, child = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=_child, args=(child, int(limit_mb * 2**20)), name=f"siting-{model}", daemon=True)
    with _START:
        proc.start()
    child.close()
    limit = f"{limit_mb:,.0f} MB (processes.max_solve_memory_mb)"
    try:
        msg = _recv(parent, proc, time.monotonic() + 60)
        if msg is None or msg[0] != "ready":
            raise SolverCrashed(f"the solver process did not start ({_how(proc)})")
        try:
            parent.send((model, kwargs, [(k, v.shape, v.dtype.str) for k, v in arrays.items()]))
            _send_arrays(parent, arrays)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child died (out of memory for its inputs): its last word, if any, is read below
        last: tuple[float, str] = (0.0, "solving")
        deadline = time.monotonic() + wall_s
        while True:
            msg = _recv(parent, proc, time.monotonic() + IDLE_S)
            if msg is None:
                if not proc.is_alive():
                    proc.join(5)
                    if proc.exitcode == 0:
                        raise SolverCrashed("the solver process ended without an answer")
                    raise SolveLimitError(f"the solve ended abnormally ({_how(proc)}), most likely over its "
                                           f"memory limit of {limit}; {hint}")
                if time.monotonic() > deadline:
                    raise SolveLimitError(f"the solve ran past {wall_s:.0f} s (its time_limit plus a margin) and "
                                           f"was stopped; {hint}")
                progress(*last)
                continue
            kind = msg[0]
            if kind == "progress":
                last = (float(msg[1]), str(msg[2]))
                progress(*last)
            elif kind == "result":
                stats = msg[2]
                LOGGER.info("siting %s solved in a child: peak %.0f MB address space over %.0f MB base, %.0f MB RSS",
                            model, stats["vm_peak"] / 2**20, stats["vm_base"] / 2**20, stats["rss_peak"] / 2**20)
                res: siting.SitingResult = msg[1]
                res.details["solve_process"] = {"peak_mb": round(stats["vm_peak"] / 2**20, 1),
                                                "rss_peak_mb": round(stats["rss_peak"] / 2**20, 1),
                                                "base_mb": round(stats["vm_base"] / 2**20, 1),
                                                "limit_mb": limit_mb, "limit_reached": stats["limit_reached"]}
                return res
            elif kind == "memory":
                raise SolveLimitError(f"the solve ran out of its memory limit of {limit} ({msg[1]}); {hint}")
            elif kind == "infeasible":
                raise siting.SitingInfeasibleError(msg[1], msg[2])
            elif kind == "input":
                raise siting.SitingInputError(msg[1])
            else:
                LOGGER.error("siting %s failed in its child process:\n%s", model, msg[2])
                raise SolverCrashed(f"the solver failed: {msg[1]}")
    finally:
        _stop(proc)
        parent.close()


def _recv(conn: Connection, proc: multiprocessing.process.BaseProcess, until: float) -> Any:
    """The next message, or None when none came before ``until`` or the child is gone (EOF)."""
    while True:
        try:
            if conn.poll(max(0.0, min(0.25, until - time.monotonic()))):
                return conn.recv()
        except (EOFError, ConnectionResetError, OSError):
            return None
        if time.monotonic() >= until or not proc.is_alive():
            try:
                return conn.recv() if conn.poll(0) else None
            except (EOFError, ConnectionResetError, OSError):
                return None


def _how(proc: multiprocessing.process.BaseProcess) -> str:
    code = proc.exitcode
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return "out of memory" if code == MEMORY_EXIT else f"exit code {code}"


def _stop(proc: multiprocessing.process.BaseProcess) -> None:
    """Terminate the child (SIGTERM, then SIGKILL) and reap it."""
    if proc.is_alive():
        proc.terminate()
        proc.join(2)
        if proc.is_alive():
            proc.kill()
    proc.join(5)
    with contextlib.suppress(ValueError):
        proc.close()
