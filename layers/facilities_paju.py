"""Layer facilities_paju: Paju libraries, parks, schools and open facilities (loaded with the Paju network)."""

from __future__ import annotations

from layers.facilities import PROPERTIES as _FACILITY_PROPERTIES
from loaders.recipes import Dataset

DATASETS: list[Dataset] = []  # loaded by loaders.osm_network.load_bundled_networks, beside the Paju network
PROPERTIES: dict[str, tuple[str, str]] = dict(_FACILITY_PROPERTIES)
