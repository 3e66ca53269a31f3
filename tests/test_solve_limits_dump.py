"""Temporary: dump real Paju cost matrices for memory calibration (deleted before the report)."""

from typing import Any

import numpy as np

from processes.base import Context
from processes.soc_meta import PAJU_PMEDIAN
from server import services

UNJEONG = "name IN ('운정1동', '운정2동', '운정3동')"


def test_dump(app: Any) -> None:
    rt = services.of(app).runtime
    proc = rt.processors["soc-siting"]
    cases = {"paju": PAJU_PMEDIAN["inputs"]}
    for d, g in [(150, 200), (100, 150), (70, 100), (50, 80)]:
        cases[f"grid{d}_{g}"] = {**PAJU_PMEDIAN["inputs"],
                                 "demand": {"layer": "paju_emd", "weight": "voters", "cell_m": d, "filter": UNJEONG},
                                 "candidates": {"grid": {"cell_m": g, "area": "paju_emd", "filter": UNJEONG}}}
    for name, inputs in cases.items():
        clean = proc.validate(dict(inputs), {
            "read_db": services.of(app).db, "registry": services.of(app).registry, "base_url": ""})
        ctx = Context(db=rt.db, config=rt.config, job_id="dump", services={})
        cand, ex, dem = clean["candidates"], clean["existing"], clean["demand"]
        xy = np.vstack([cand.xy, ex.xy]) if ex else cand.xy
        c, _ = proc.costs(clean, ctx, xy)
        w = dem.sample_weight
        ok = np.isfinite(c).any(axis=1) & (w > 0)
        np.savez(f"/tmp/solve_limits/{name}.npz", c=c[ok], w=w[ok],
                 existing=np.arange(len(cand.ids), xy.shape[0]), minutes=clean["minutes"])
        print(name, c[ok].shape, np.isfinite(c[ok]).mean())
