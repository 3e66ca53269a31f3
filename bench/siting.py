"""python -m bench.siting: our siting solvers against PySAL spopt + HiGHS (via PuLP) on the same instances.

Every run happens in a fresh worker process, so the reported peak memory is that run's own peak RSS (solver
and model included, not only Python allocations); a run that outlives its cap is killed and printed as capped.

Instances: OR-Library pmed1-10 (exact p-median, heuristic p-median, p-center), a generated 2,000 x 200
p-median, a generated 10,000 x 1,000 MCLP (p = 50, 1 km) and the same-size p-median (heuristic with a
certified gap). Generated instances: uniform points in a 20 km x 20 km square (about Sejong's area),
Euclidean km, integer weights 1-99, seed 42.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("SEJONG_DATA_DIR", REPO.parent / "shared" / "data")) / "or-library"


# ----- instances ------------------------------------------------------------------------------------------------


def instance(name: str) -> tuple[np.ndarray, np.ndarray, int, float | None]:
    """(cost, weights, p, T) of a named instance: ``pmedN``, ``gen2000x200``, ``gen10000x1000``."""
    if name.startswith("pmed"):
        from processes.siting import load_pmed

        n, p, c = load_pmed(DATA / f"{name}.txt")
        return c, np.ones(n), p, None
    n, m, p = {"gen2000x200": (2000, 200, 10), "gen10000x1000": (10000, 1000, 50)}[name]
    rng = np.random.default_rng(42)
    dem, cand = rng.uniform(0, 20, (n, 2)), rng.uniform(0, 20, (m, 2))
    c = np.empty((n, m))
    for s in range(0, n, 1000):
        c[s:s + 1000] = np.sqrt(((dem[s:s + 1000, None] - cand[None]) ** 2).sum(-1))
    return c, rng.integers(1, 100, n).astype(float), p, 1.0


# ----- one run (inside a worker process) -------------------------------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_one(system: str, model: str, name: str, cap: float) -> dict[str, Any]:
    """Solve one instance with one system; returns time, objective, bound, status and peak RSS."""
    import processes.siting as ps

    c, w, p, t = instance(name)
    base = _rss_mb()
    t0 = time.perf_counter()
    out: dict[str, Any] = {"system": system, "model": model, "instance": name}
    if system == "ours":
        if model == "p_median":
            r = ps.p_median(c, w, p, method="exact", time_limit=cap)
        elif model == "p_median_heuristic":
            r = ps.p_median(c, w, p, method="heuristic", time_limit=cap)
        elif model == "p_center":
            r = ps.p_center(c, w, p, time_limit=cap)
        else:
            r = ps.mclp(c, w, p, T=t or 0.0, method="exact", time_limit=cap)
        out.update(objective=r.objective, bound=r.bound, gap=r.gap, status=r.status)
    else:
        out.update(_run_spopt(model, c, w, p, t, cap))
    out["time_s"] = time.perf_counter() - t0
    out["peak_mb"] = _rss_mb()
    out["model_mb"] = _rss_mb() - base
    return out


def _run_spopt(model: str, c: np.ndarray, w: np.ndarray, p: int, t: float | None, cap: float) -> dict[str, Any]:
    import pulp
    from spopt.locate import MCLP, PCenter, PMedian

    solver = pulp.HiGHS(msg=False, timeLimit=cap)
    if model == "p_median":
        m = PMedian.from_cost_matrix(c, w, p_facilities=p)
    elif model == "p_center":
        m = PCenter.from_cost_matrix(c, p_facilities=p)
    else:
        m = MCLP.from_cost_matrix(c, w, service_radius=t, p_facilities=p)
    try:
        m = m.solve(solver, results=False)
    except RuntimeError as exc:  # spopt raises on a non-optimal status
        return {"objective": float("nan"), "bound": float("nan"), "gap": float("nan"), "status": f"error: {exc}"}
    prob = m.problem
    # PuLP reports a time-limited run with an incumbent as 'Optimal': sol_status 1 = proven, 2 = feasible only
    status = "optimal" if prob.sol_status == 1 else "time_limit"
    return {"objective": float(pulp.value(prob.objective)), "bound": float("nan"), "gap": float("nan"),
            "status": status}


# ----- driver ---------------------------------------------------------------------------------------------------


def run_capped(system: str, model: str, name: str, cap: float) -> dict[str, Any]:
    """``run_one`` in a fresh process, killed after ``cap`` + 60 s (model building counts)."""
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
        fut = ex.submit(run_one, system, model, name, cap)
        try:
            return fut.result(timeout=cap + 60.0)
        except cf.TimeoutError:
            for proc in list(getattr(ex, "_processes", {}).values()):
                proc.kill()
            return {"system": system, "model": model, "instance": name, "status": "capped (killed)",
                    "time_s": cap + 60.0, "objective": float("nan"), "peak_mb": float("nan"), "gap": float("nan")}


def _fmt(x: Any, spec: str = ".1f") -> str:
    if isinstance(x, float) and (x != x):
        return "-"
    return format(x, spec) if isinstance(x, (int, float)) else str(x)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the tables."""
    ap = argparse.ArgumentParser(prog="python -m bench.siting", description=__doc__)
    ap.add_argument("--spopt-cap", type=float, default=60.0, help="seconds per spopt run (default 60)")
    ap.add_argument("--large-spopt-cap", type=float, default=120.0, help="seconds for spopt on generated instances")
    ap.add_argument("--no-spopt", action="store_true", help="only our solvers")
    ap.add_argument("--sections", default="pmed,heur,pcenter,large", help="comma list of pmed,heur,pcenter,large")
    args = ap.parse_args(argv)
    sections = set(args.sections.split(","))
    from processes.siting import load_pmedopt

    opt = load_pmedopt(DATA / "pmedopt.txt")
    copt = load_pmedopt(DATA / "pcenter-opt.txt")
    names = [f"pmed{k}" for k in range(1, 11)]
    t_start = time.perf_counter()
    rows: list[str] = []

    def table(title: str, header: str) -> None:
        print(f"\n## {title}\n{header}\n{'|---' * (header.count('|') - 1)}|")
        sys.stdout.flush()

    if "pmed" in sections:
        table("Exact p-median, OR-Library (ours: radius model + HiGHS; spopt: dense model + HiGHS via PuLP)",
              "| inst | opt | ours obj | ours status | ours s | ours MB | spopt obj | spopt status | spopt s | "
              "spopt MB | time ratio spopt/ours |")
        for nm in names:
            a = run_capped("ours", "p_median", nm, 60.0)
            b = (run_capped("spopt", "p_median", nm, args.spopt_cap) if not args.no_spopt else
                 {"objective": float("nan"), "status": "not run", "time_s": float("nan"), "peak_mb": float("nan")})
            capped = b["status"] not in ("optimal", "not run")
            if b["status"] == "optimal":
                ratio = _fmt(b["time_s"] / a["time_s"], ".1f")
            elif capped:
                ratio = ">" + _fmt(b["time_s"] / a["time_s"], ".1f")
            else:
                ratio = "-"
            line = (f"| {nm} | {opt[nm]:.0f} | {_fmt(a['objective'], '.0f')} | {a['status']} "
                    f"| {_fmt(a['time_s'], '.2f')} | {_fmt(a['peak_mb'], '.0f')} | {_fmt(b['objective'], '.0f')} "
                    f"| {b['status']} | {_fmt(b['time_s'], '.2f')}{' (cap)' if capped else ''} "
                    f"| {_fmt(b['peak_mb'], '.0f')} | {ratio} |")
            print(line)
            rows.append(line)
            sys.stdout.flush()
    if "heur" in sections:
        table("Heuristic p-median (greedy + fast swap + Lagrangian restarts + VNS; Lagrangian bound)",
              "| inst | opt | obj | gap to opt % | certified gap % | status | s |")
        gaps = []
        for nm in names:
            a = run_capped("ours", "p_median_heuristic", nm, 10.0)
            g = (a["objective"] - opt[nm]) / opt[nm]
            gaps.append(g)
            print(f"| {nm} | {opt[nm]:.0f} | {a['objective']:.0f} | {100 * g:.3f} | {100 * a['gap']:.3f} "
                  f"| {a['status']} | {a['time_s']:.2f} |")
        print(f"\nheuristic mean gap to the optimum: {100 * sum(gaps) / len(gaps):.4f} % (max {100 * max(gaps):.4f} %)")
    if "pcenter" in sections:
        table("p-center, OR-Library (ours: bisection + set-cover probes; spopt: PCenter + HiGHS)",
              "| inst | opt | ours obj | ours status | ours s | spopt obj | spopt status | spopt s |")
        for nm in names:
            a = run_capped("ours", "p_center", nm, 60.0)
            b = (run_capped("spopt", "p_center", nm, args.spopt_cap) if not args.no_spopt and nm == "pmed1" else
                 {"objective": float("nan"), "status": "not run", "time_s": float("nan")})
            print(f"| {nm} | {copt[nm]:.0f} | {a['objective']:.0f} | {a['status']} | {a['time_s']:.2f} "
                  f"| {_fmt(b['objective'], '.0f')} | {b['status']} | {_fmt(b['time_s'], '.2f')} |")
    if "large" in sections:
        table("Generated scale tests (20 km square, seed 42)",
              "| case | system | objective | bound/gap | status | s | peak MB |")
        cases = [("p_median", "gen2000x200", "2,000 x 200 p-median p=10 (exact)"),
                 ("mclp", "gen10000x1000", "10,000 x 1,000 MCLP p=50, 1 km (exact)"),
                 ("p_median_heuristic", "gen10000x1000", "10,000 x 1,000 p-median p=50 (heuristic)")]
        for model, nm, label in cases:
            a = run_capped("ours", model, nm, 60.0)
            print(f"| {label} | ours | {_fmt(a['objective'], '.6g')} | {100 * a.get('gap', float('nan')):.3f} % "
                  f"| {a['status']} | {a['time_s']:.1f} | {_fmt(a['peak_mb'], '.0f')} |")
            sys.stdout.flush()
            if not args.no_spopt and model != "p_median_heuristic":
                b = run_capped("spopt", model, nm, args.large_spopt_cap)
                print(f"| {label} | spopt+HiGHS (cap {args.large_spopt_cap:.0f} s) | {_fmt(b['objective'], '.6g')} | - "
                      f"| {b['status']} | {b['time_s']:.1f} | {_fmt(b['peak_mb'], '.0f')} |")
                sys.stdout.flush()
    print(f"\ntotal bench time {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
