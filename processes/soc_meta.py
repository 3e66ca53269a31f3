"""Description (inputs, outputs, examples) of the `soc-siting` process."""

from __future__ import annotations

from typing import Any

from core.presets import PRESETS

MODELS = ("lscp", "mclp", "p-median", "p-center", "capacitated-p-median", "max-attendance")
OUTPUTS = ("summary", "sites", "allocation")

_SITES = {"oneOf": [
    {"type": "object", "required": ["layer"], "properties": {
        "layer": {"type": "string", "description": "collection id, e.g. facilities_paju"},
        "filter": {"description": "CQL2 text or JSON, e.g. kind IN ('public_open_facility','park')"}}},
    {"type": "object", "required": ["grid"], "properties": {"grid": {"type": "object", "properties": {
        "cell_m": {"type": "number", "minimum": 20, "maximum": 5000, "default": 300},
        "area": {"description": "layer id (with optional grid.filter) or a lon/lat bbox"},
        "filter": {"description": "CQL2 filter on the area layer"}}}}},
    {"type": "object", "description": "GeoJSON FeatureCollection of Points (lon/lat)",
     "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array"}}},
]}

_UNJEONG = "name IN ('운정1동', '운정2동', '운정3동')"
PAJU_PMEDIAN: dict[str, Any] = {"inputs": {
    "model": "p-median", "p": 2, "mode": "walk", "minutes": 10, "network": "paju",
    "candidates": {"layer": "facilities_paju", "filter": "kind IN ('public_open_facility', 'park')"},
    "existing": {"layer": "facilities_paju", "filter": "kind = 'library'"},
    "demand": {"layer": "paju_emd", "weight": "voters", "filter": _UNJEONG},
    "outputs": ["summary", "sites"]}}
PAJU_MCLP: dict[str, Any] = {"inputs": {**PAJU_PMEDIAN["inputs"], "model": "mclp"}}
SEJONG_BIKE: dict[str, Any] = {"inputs": {
    "model": "mclp", "p": 10, "facility_type": "bike_station",
    "candidates": {"grid": {"cell_m": 300, "area": "admin_areas", "filter": "name LIKE '%동'"}},
    "existing": {"layer": "bike_stations"},
    "demand": {"layer": "population", "month": "2023-08", "cell_m": 250},
    "outputs": ["summary", "sites"], "store": True}}

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "soc-siting",
    "title": "Optimal living-SOC siting (location-allocation)",
    "description": (
        "Chooses the best new sites for a facility among candidates, keeping existing facilities open and counted: "
        "LSCP (fewest sites covering all demand within `minutes`), MCLP (p sites maximising demand within "
        "`minutes`), p-median (p sites minimising total weighted travel time), p-center (minimising the worst "
        "time), capacitated p-median (site capacity in demand units) and max-attendance (attendance decays with "
        "time, 0 beyond `minutes`). Travel times are a demand x site matrix over the road network by mode (one "
        "limited Dijkstra per site) or, where no network is loaded, straight-line distance x a detour factor "
        "(said in `summary.cost_method` and `summary.straight_line`). Exact MIP (HiGHS) or a heuristic with a "
        "proven bound; the summary gives the objective, bound, gap, status (optimal | feasible | time_limit) and "
        "coverage and mean/worst time before (existing only) and after. Presets (`facility_type`): "
        + "; ".join(f"{k}: {v['mode']} {v['minutes'][0]} min" for k, v in PRESETS.items())
        + ". Default `example`: 2 new libraries for 운정1-3동 (Paju) by p-median on the walk network; "
          "`examples` adds MCLP and the Sejong bike-station case (on the Sejong KAIS road network)."),
    "keywords": ["siting", "입지분석", "생활SOC", "location-allocation", "p-median", "MCLP", "LSCP"],
    "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
    "outputTransmission": ["value"],
    "inputs": {
        "model": {"title": "Model", "schema": {"type": "string", "enum": list(MODELS)}, "minOccurs": 1,
                  "maxOccurs": 1},
        "candidates": {"title": "Candidate sites", "description": "a layer with an optional CQL2 filter, a grid "
                       "{grid: {cell_m, area, filter}}, or inline GeoJSON points", "schema": _SITES,
                       "minOccurs": 1, "maxOccurs": 1},
        "existing": {"title": "Existing facilities (kept open, counted)", "description": "a layer + filter or "
                     "inline GeoJSON points", "schema": _SITES, "minOccurs": 0, "maxOccurs": 1},
        "demand": {"title": "Demand", "description": "{layer, weight, filter, cell_m, month, spread} (polygons are "
                   "sampled on a cell_m grid, weight split equally, or spread \"centroid\": one point per unit; month "
                   "YYYY-MM of a time-enabled layer, default its latest), {grid: {cell_m, area}}, or inline GeoJSON "
                   "points with property weight. Default: {\"layer\": \"population\"}, Sejong residents per 행정동 "
                   "of the latest month", "schema": {"type": "object"}, "minOccurs": 0, "maxOccurs": 1},
        "p": {"title": "New sites to open", "description": "required by every model but lscp",
              "schema": {"type": "integer", "minimum": 0}, "minOccurs": 0, "maxOccurs": 1},
        "facility_type": {"title": "Facility type preset", "description": "sets mode and minutes from the "
                          "service standard (a request may override either)",
                          "schema": {"type": "string", "enum": sorted(PRESETS)}, "minOccurs": 0, "maxOccurs": 1},
        "mode": {"title": "Travel mode", "schema": {"type": "string", "enum": ["walk", "bike", "car"],
                                                    "default": "walk"}, "minOccurs": 0, "maxOccurs": 1},
        "minutes": {"title": "Coverage threshold T (minutes)", "description": "coverage models use it as the "
                    "standard; the others report coverage within it", "schema": {
                        "type": "number", "exclusiveMinimum": 0, "maximum": 180, "default": 10},
                    "minOccurs": 0, "maxOccurs": 1},
        "cutoff_minutes": {"title": "Longest travel time considered", "description": "times beyond it count as "
                           "unreachable (default max(60, 3 T), at most 180)",
                           "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 180},
                           "minOccurs": 0, "maxOccurs": 1},
        "capacity": {"title": "Site capacity (capacitated-p-median)", "description": "in demand-weight units, "
                     "the same for every site", "schema": {"type": "number", "exclusiveMinimum": 0},
                     "minOccurs": 0, "maxOccurs": 1},
        "decay": {"title": "Attendance decay (max-attendance)", "schema": {
            "type": "string", "enum": ["linear", "exponential", "step"], "default": "linear"},
            "minOccurs": 0, "maxOccurs": 1},
        "beta": {"title": "Exponential decay rate per minute (max-attendance)", "schema": {
            "type": "number", "minimum": 0}, "minOccurs": 0, "maxOccurs": 1},
        "method": {"title": "Solver", "description": "auto (exact when the instance is small enough), exact "
                   "(HiGHS MIP) or heuristic (with a proven bound)", "schema": {
                       "type": "string", "enum": ["auto", "exact", "heuristic"], "default": "auto"},
                   "minOccurs": 0, "maxOccurs": 1},
        "time_limit": {"title": "Solver time limit (s)", "description": "at the limit the best solution is "
                       "returned with status time_limit and its gap", "schema": {
                           "type": "number", "minimum": 0.1, "maximum": 600, "default": 30},
                       "minOccurs": 0, "maxOccurs": 1},
        "network": {"title": "Road network", "description": "a loaded network name (e.g. paju), \"none\" for "
                    "straight-line; default: the network covering the demand, else straight-line",
                    "schema": {"type": "string"}, "minOccurs": 0, "maxOccurs": 1},
        "outputs": {"title": "Outputs to compute", "schema": {"type": "array", "items": {
            "type": "string", "enum": list(OUTPUTS)}}, "minOccurs": 0, "maxOccurs": 1},
        "store": {"title": "Store sites and allocation as temporary collections",
                  "description": "collections job_<id>_sites and job_<id>_allocation (features, tiles) that expire",
                  "schema": {"type": "boolean", "default": False}, "minOccurs": 0, "maxOccurs": 1},
    },
    "outputs": {
        "summary": {"title": "Objective, bound, gap, status, run time; coverage and mean/worst time before "
                             "and after; the chosen sites", "schema": {"type": "object",
                                                                       "contentMediaType": "application/json"}},
        "sites": {"title": "Open sites (new and existing) with assigned demand",
                  "schema": {"type": "object", "contentMediaType": "application/geo+json"}},
        "allocation": {"title": "Allocation lines demand point -> site with travel time",
                       "schema": {"type": "object", "contentMediaType": "application/geo+json"}},
    },
    "example": PAJU_PMEDIAN,
    "examples": [PAJU_PMEDIAN, PAJU_MCLP, SEJONG_BIKE],
    "links": [],
}
