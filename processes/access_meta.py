"""Description (inputs, outputs, examples) of the `accessibility` process."""

from __future__ import annotations

from typing import Any

from core.presets import PRESETS

_LAYER_OR_POINTS = {"oneOf": [
    {"type": "object", "required": ["layer"], "properties": {
        "layer": {"type": "string", "description": "collection id, e.g. facilities"},
        "filter": {"description": "CQL2 text or JSON on the layer's properties, e.g. kind = 'library'"}}},
    {"type": "object", "description": "GeoJSON FeatureCollection of Points (lon/lat)",
     "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array"}}},
]}

PAJU_EXAMPLE: dict[str, Any] = {"inputs": {
    "facilities": {"layer": "facilities_paju", "filter": "kind = 'library'"},
    "mode": "walk", "minutes": [10, 15],
    "demand": {"layer": "paju_emd", "weight": "voters", "filter": "name IN ('운정1동', '운정2동', '운정3동')"},
    "network": "paju", "outputs": ["summary", "by_area"]}}
SEJONG_EXAMPLE: dict[str, Any] = {"inputs": {
    "facility_type": "bike_station", "facilities": {"layer": "bike_stations"},
    "demand": {"layer": "population", "month": "2023-08", "spread": "grid", "cell_m": 250},
    "outputs": ["summary", "by_area"]}}
GRID_EXAMPLE: dict[str, Any] = {"inputs": {
    "facility_type": "park", "facilities": {"layer": "facilities", "filter": "kind = 'park'"},
    "demand": {"grid": {"cell_m": 500, "area": "admin_areas"}}, "outputs": ["summary", "isochrones", "gaps"],
    "store": True}}

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "accessibility",
    "title": "Accessibility: who reaches which facility within N minutes",
    "description": (
        "Travel time from every demand unit (areas with a weight such as voters, a generated grid, or points) to its "
        "nearest facility, with ONE multi-source shortest-path search over the road network (walk 4.5 km/h, bike 15 "
        "km/h, car by road class and one-way where the network has it; `summary.network_notes` says when not). "
        "Returns the covered weight and share per threshold, overall and per "
        "administrative area, isochrone polygons and the gap areas. Where no network covers the area it falls back "
        "to straight-line distance × a detour factor and says so in `summary.method`. Presets (`facility_type`) "
        "carry the Korean service standards (기초생활인프라 국가적 최저기준 2018): "
        + "; ".join(f"{k}: {v['mode']} {v['minutes'][0]} min" for k, v in PRESETS.items())
        + ". Example 1 (default `example`): libraries within 10/15 min walk of voters in 운정1-3동, Paju. "
          "`examples` has the Sejong bike-station case (on the Sejong KAIS road network) and a park grid case."),
    "keywords": ["accessibility", "접근성", "생활SOC", "isochrone", "coverage"],
    "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
    "outputTransmission": ["value"],
    "inputs": {
        "facilities": {"title": "Facilities", "description": "a layer id with an optional CQL2 filter, or inline "
                       "GeoJSON points", "schema": _LAYER_OR_POINTS, "minOccurs": 1, "maxOccurs": 1},
        "facility_type": {"title": "Facility type preset", "description": "sets mode and minutes from the service "
                          "standard (a request may override either)",
                          "schema": {"type": "string", "enum": sorted(PRESETS)}, "minOccurs": 0, "maxOccurs": 1},
        "mode": {"title": "Travel mode", "schema": {"type": "string", "enum": ["walk", "bike", "car"],
                                                    "default": "walk"}, "minOccurs": 0, "maxOccurs": 1},
        "minutes": {"title": "Time thresholds (minutes)", "description": "one number or a list (at most 6)",
                    "schema": {"oneOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": 180},
                                         {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0,
                                                                     "maximum": 180}, "minItems": 1,
                                          "maxItems": 6}]}, "minOccurs": 0, "maxOccurs": 1},
        "demand": {"title": "Demand", "description": "{layer, weight, filter, cell_m, month, spread} (polygons are "
                   "sampled on a cell_m grid with the weight split equally, spread \"grid\", or one point on each "
                   "unit's surface, spread \"centroid\"; month picks one month of a time-enabled layer such as "
                   "population, YYYY-MM, default its latest; weight defaults to a `population` column), "
                   "{grid: {cell_m, area: layer id or lon/lat bbox}}, or inline GeoJSON points with property weight. "
                   "Default: {\"layer\": \"population\"}, Sejong's registered residents (내국인+외국인) per 행정동 "
                   "of the latest month; `summary.demand.source` names the layer and month",
                   "schema": {"type": "object"}, "minOccurs": 0, "maxOccurs": 1},
        "areas": {"title": "Areas for by_area", "description": "layer id of administrative areas (default: the "
                  "demand layer when it has polygons)", "schema": {"type": "string"}, "minOccurs": 0, "maxOccurs": 1},
        "network": {"title": "Road network", "description": "a loaded network name (e.g. paju), \"none\" for "
                    "straight-line; default: the network covering the demand, else straight-line",
                    "schema": {"type": "string"}, "minOccurs": 0, "maxOccurs": 1},
        "outputs": {"title": "Outputs to compute", "schema": {"type": "array", "items": {
            "type": "string", "enum": ["summary", "by_area", "demand", "isochrones", "gaps"]}},
            "minOccurs": 0, "maxOccurs": 1},
        "isochrones_per_facility": {"title": "One isochrone per facility (catchments)",
                                    "schema": {"type": "boolean", "default": False}, "minOccurs": 0, "maxOccurs": 1},
        "store": {"title": "Store results as temporary collections", "description": "demand, isochrones and gaps "
                  "become collections job_<id>_<name> (features, tiles, style) that expire",
                  "schema": {"type": "boolean", "default": False}, "minOccurs": 0, "maxOccurs": 1},
    },
    "outputs": {
        "summary": {"title": "Summary: method, covered weight and share per threshold",
                    "schema": {"type": "object", "contentMediaType": "application/json"}},
        "by_area": {"title": "Per administrative area: total, covered weight and share per threshold",
                    "schema": {"type": "array", "items": {"type": "object"}}},
        "demand": {"title": "Per demand unit: mean and nearest travel time, nearest facility, shares",
                   "schema": {"type": "object", "contentMediaType": "application/geo+json"}},
        "isochrones": {"title": "Isochrone polygons per threshold (or per facility)",
                       "schema": {"type": "object", "contentMediaType": "application/geo+json"}},
        "gaps": {"title": "Demand area beyond each threshold",
                 "schema": {"type": "object", "contentMediaType": "application/geo+json"}},
    },
    "example": PAJU_EXAMPLE,
    "examples": [PAJU_EXAMPLE, SEJONG_EXAMPLE, GRID_EXAMPLE],
    "links": [],
}
