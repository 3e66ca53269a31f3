"""Layer paju_emd: Paju 읍면동 (KOSTAT 2018) with 2022 registered voters, the demand of the Paju examples."""

from __future__ import annotations

from loaders.recipes import Dataset

DATASETS: list[Dataset] = []  # loaded by loaders.osm_network.load_bundled_networks, beside the Paju network
PROPERTIES: dict[str, tuple[str, str]] = {
    "id": ("번호", "ID"),
    "code": ("행정구역코드", "KOSTAT code"),
    "name": ("읍면동", "Eup/myeon/dong"),
    "name_eng": ("영문 이름", "English name"),
    "base_year": ("기준연도", "Base year"),
    "voters": ("선거인수 (2022, 인구 대용값)", "Registered voters 2022 (population proxy)"),
}
