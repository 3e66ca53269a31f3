"""The data-quality page: every declared layer with its last load and the quality report stored with it."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, render_template, request

from layers.model import Layer
from layers.query import reject_unknown
from server import access, auth, services
from server.negotiate import HTML, JSON, language, link, response_format, self_and_alternates
from server.params_spec import accepted

BP = Blueprint("quality", __name__)


def summary(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The headline numbers of a quality report (None before the first report)."""
    if not report:
        return None
    if "tables" in report:  # a layer over several tables: the first one's headline
        return summary(report["tables"][0]) if report["tables"] else None
    comp, val, uni, tim = (report.get(k) or {} for k in ("completeness", "validity", "uniqueness", "timeliness"))
    return {
        "complete": comp.get("complete"),
        "rowsRejected": val.get("rowsRejected", 0),
        "typeFailures": sum((val.get("typeFailures") or {}).values()),
        "geometriesRepaired": val.get("geometriesRepaired", 0),
        "outOfRegion": val.get("outOfRegion"),
        "duplicateIds": sum((uni.get("duplicateIds") or {}).values()),
        "duplicateGeometries": uni.get("duplicateGeometries"),
        "newest": tim.get("newest"),
        "ageDays": tim.get("ageDays"),
    }


def _entry(layer_id: str, title: str, layer: Layer | None) -> dict[str, Any]:
    if layer is None:
        return {"id": layer_id, "title": title, "served": False, "lastLoad": None, "quality": None, "summary": None}
    loads = [p for p in layer.provenance if p.get("loadedAt")]
    last = max(loads, key=lambda p: p["loadedAt"]) if loads else None
    return {
        "id": layer_id, "title": title, "served": True,
        "lastLoad": {"loadedAt": last["loadedAt"], "rows": last["rows"], "dataVersion": last["dataVersion"],
                     "sources": [s.get("file") for s in last.get("sources") or []]} if last else None,
        "summary": summary(layer.quality), "quality": layer.quality,
        "links": [link("collection", JSON, f"/collections/{layer_id}", "the collection", f="json")],
    }


@BP.route("/quality")
def quality() -> Response:
    """Every layer of config.yml the caller may read: served or not, its last load and its data-quality report."""
    reject_unknown(request.args, accepted("/quality"))
    fmt = response_format([JSON, HTML])
    lang = language()
    svc = services.current()
    served = {layer.id: layer for layer in access.layers()}
    roles = auth.current().roles
    layers = [_entry(lid, cfg.title.get(lang), served.get(lid))
              for lid, cfg in svc.config.layers.items() if cfg.readable_by(roles)]
    doc = {"links": self_and_alternates("/quality", fmt, [JSON, HTML]), "layers": layers}
    if fmt == HTML:
        return Response(render_template("quality.html", doc=doc, lang=lang), mimetype=HTML)
    return Response(json.dumps(doc, ensure_ascii=False), mimetype=JSON)
