"""Percentiles, the printed table and the JSON file."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.features import Result
from bench.queries import Query

HTTP_SYSTEMS = ("ours", "pygeoapi", "tipg")


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def target_ok(ours_p50: float, bare_p50: float) -> bool:
    """Our target: p50 <= max(1.3 x bare, bare + 2 ms)."""
    return ours_p50 <= max(1.3 * bare_p50, bare_p50 + 2.0)


def summarize(q: Query, results: dict[str, Result]) -> dict[str, Any]:
    """One row of the report as plain data."""
    bare = results.get("bare")
    bare_p50 = percentile(bare.samples_ms, 50) if bare else math.nan
    row: dict[str, Any] = {
        "table": q.table.key, "relation": q.table.table, "query": q.label, "bbox_crs84": q.bbox,
        "offset": q.offset, "matched": q.matched, "features": bare.check.count if bare else None, "systems": {},
    }
    for name, res in results.items():
        p50, p95 = percentile(res.samples_ms, 50), percentile(res.samples_ms, 95)
        valid = res.check.error is None and res.check.mismatch is None and bool(res.samples_ms)
        row["systems"][name] = {
            "p50_ms": None if math.isnan(p50) else round(p50, 2), "p95_ms": None if math.isnan(p95) else round(p95, 2),
            "n": len(res.samples_ms), "features": res.check.count, "error": res.check.error,
            "errors": res.errors, "mismatch": res.check.mismatch, "note": res.check.note,
            "ratio_to_bare": round(p50 / bare_p50, 2) if valid and name != "bare" and bare_p50 > 0 else None,
        }
    ours = row["systems"].get("ours")
    if ours is not None and bare is not None and bare.samples_ms:
        if ours["error"] or ours["mismatch"] or ours["p50_ms"] is None:
            row["target"] = "FAIL (correctness)" if ours["mismatch"] else "FAIL (error)"
        else:
            row["target"] = "PASS" if target_ok(ours["p50_ms"], bare_p50) else "FAIL"
        row["target_limit_ms"] = round(max(1.3 * bare_p50, bare_p50 + 2.0), 2)
    return row


def _cell(s: dict[str, Any] | None) -> str:
    if s is None:
        return "-"
    if s["error"] and not s["n"]:
        return "ERROR"
    if s["p50_ms"] is None:
        return "-"
    text = f"{s['p50_ms']:7.1f}/{s['p95_ms']:7.1f}"
    if s["mismatch"]:
        return text + "  MISMATCH"
    if s["ratio_to_bare"] is not None:
        return text + f" x{s['ratio_to_bare']:<5.2f}"
    return text


def print_table(rows: list[dict[str, Any]], systems: list[str]) -> None:
    """The human-readable table on stdout."""
    cols = [s for s in ("bare", *HTTP_SYSTEMS) if s in systems]
    widths = {"bare": 16, "ours": 24, "pygeoapi": 24, "tipg": 24}
    head = f"{'table':<14}{'query':<12}{'feats':>6}  " + "".join(f"{c:<{widths[c] + 2}}" for c in cols) + "target"
    print()
    print("p50/p95 latency in ms per items page (limit=1000); xN = p50 / bare p50; "
          "target: ours p50 <= max(1.3 x bare, bare + 2 ms)")
    print(head)
    print("-" * len(head) + "-" * 18)
    last = None
    for r in rows:
        if last is not None and r["table"] != last:
            print()
        last = r["table"]
        cells = "".join(f"{_cell(r['systems'].get(c)):<{widths[c] + 2}}" for c in cols)
        target = r.get("target", "-")
        if "target_limit_ms" in r:
            target += f" (<= {r['target_limit_ms']:.1f})"
        feats = r["features"] if r["features"] is not None else "-"
        print(f"{r['table']:<14}{r['query']:<12}{feats:>6}  {cells}{target}")
    print()


def print_diagnostics(rows: list[dict[str, Any]], floor: dict[str, list[float]]) -> None:
    """Where our time goes: our server's own SQL without HTTP, and each server's trivial-route floor."""
    if floor:
        print("HTTP floor (GET /conformance, client + framework, no data): " + ", ".join(
            f"{name} p50 {percentile(v, 50):.2f} ms" for name, v in floor.items() if v))
    have = [r for r in rows if "ours-sql" in r["systems"] and "ours" in r["systems"] and "bare" in r["systems"]]
    if not have:
        return
    print("diagnostic (p50 ms): bare = reference SQL; ours-sql = the statements our server runs, without HTTP; "
          "ours - ours-sql = HTTP + Python")
    print(f"{'table':<14}{'query':<12}{'bare':>8}{'ours-sql':>10}{'ours':>8}{'ours-ours_sql':>15}")
    for r in have:
        b, o, os_ = (r["systems"][k]["p50_ms"] for k in ("bare", "ours", "ours-sql"))
        if None in (b, o, os_):
            continue
        print(f"{r['table']:<14}{r['query']:<12}{b:8.1f}{os_:10.1f}{o:8.1f}{o - os_:15.1f}")
    print()


def print_problems(rows: list[dict[str, Any]]) -> int:
    """Loud MISMATCH / ERROR lines; returns how many."""
    n = 0
    for r in rows:
        for name, s in r["systems"].items():
            where = f"{r['table']} {r['query']}" + (f" bbox={r['bbox_crs84']}" if r["bbox_crs84"] else "")
            if s["mismatch"]:
                n += 1
                print(f"!!! MISMATCH {name:<9} {where}: {s['mismatch']} -- correctness failure, timing excluded "
                      "from the ratio")
            if s["error"]:
                n += 1
                print(f"!!! ERROR    {name:<9} {where}: {s['error']}")
            if s["note"]:
                print(f"    note     {name:<9} {where}: {s['note']}")
    return n


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """var/bench/features.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
