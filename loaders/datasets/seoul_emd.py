"""Dataset seoul_emd: KOSTAT 2018 읍면동 of Seoul (the areas of the air-exposure example on the Seoul readings)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from loaders.core import Meta, RowStats
from loaders.datasets.emd_2018 import EMD_FILE, _spec, rows
from loaders.recipes import Dataset

SEOUL_CODE = "11"
META = Meta(
    title="서울시 읍면동 (통계청 2018) / Seoul eup-myeon-dong (KOSTAT 2018)",
    licence="KOGL Type 1 (공공누리 제1유형)",
    attribution="© 통계청 통계지리정보서비스(SGIS) 2018, via github.com/southkorea/southkorea-maps (KOGL 제1유형)",
)
SPEC = _spec("public.seoul_emd")


def build(data_dir: Path, stats: RowStats) -> Iterable[Mapping[str, Any]]:
    """Seoul 읍면동 rows (KOSTAT codes 11…)."""
    return rows(data_dir / EMD_FILE, EMD_FILE, stats, prefix=SEOUL_CODE)


DATASETS = [Dataset(SPEC, [EMD_FILE], build, META)]
