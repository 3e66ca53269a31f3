"""SLD 1.1 / SE 1.1 from our MapLibre styles (/styles/{id}?f=sld11), checked against the real features.

Each rule's ogc:Filter is evaluated here (a small independent OGC filter reader) on every real feature of the
collection: every feature must fall in exactly one class, and that class must carry the colour (and size) the
MapLibre expression gives the feature, computed here by a small independent reader of the expressions used.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from layers.sld import REFERENCE_ZOOM, SLD_MEDIA, UnsupportedStyle, to_sld

REPO = Path(__file__).resolve().parent.parent
NS = {"sld": "http://www.opengis.net/sld", "se": "http://www.opengis.net/se", "ogc": "http://www.opengis.net/ogc"}
COMPARE = {"PropertyIsEqualTo": lambda a, b: a == b, "PropertyIsNotEqualTo": lambda a, b: a != b,
           "PropertyIsLessThan": lambda a, b: a < b, "PropertyIsLessThanOrEqualTo": lambda a, b: a <= b,
           "PropertyIsGreaterThan": lambda a, b: a > b, "PropertyIsGreaterThanOrEqualTo": lambda a, b: a >= b}


def _style(style_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((REPO / "styles" / f"{style_id}.json").read_text())
    return doc


def _matches(node: ET.Element | None, props: dict[str, Any]) -> bool:
    """OGC Filter Encoding 1.1 on a feature's properties (comparisons with null are false)."""
    if node is None:
        return True
    local = node.tag.split("}")[1]
    kids = list(node)
    if local == "Filter":
        return _matches(kids[0], props)
    if local == "And":
        return all(_matches(k, props) for k in kids)
    if local == "Or":
        return any(_matches(k, props) for k in kids)
    if local == "Not":
        return not _matches(kids[0], props)
    name = node.find("ogc:PropertyName", NS)
    assert name is not None and name.text, ET.tostring(node)
    value = props.get(name.text)
    if local == "PropertyIsNull":
        return value is None
    literal = node.find("ogc:Literal", NS)
    assert literal is not None, ET.tostring(node)
    if value is None:
        return False
    text = literal.text or ""
    other: Any = float(text) if isinstance(value, int | float) else text
    return bool(COMPARE[local](value, other))


def _oracle(expr: Any, props: dict[str, Any]) -> Any:
    """The MapLibre expressions our styles colour and size by (get, match, step, max, to-number, coalesce,
    interpolate, case, >), independent of layers.sld."""
    if not isinstance(expr, list):
        return expr
    op, a = expr[0], expr[1:]
    if op == "get":
        return props.get(a[0])
    if op == "zoom":
        return REFERENCE_ZOOM
    if op == "coalesce":
        return next((v for v in (_oracle(x, props) for x in a) if v is not None), None)
    if op == "to-number":
        v = _oracle(a[0], props)
        return 0.0 if v is None else float(v)
    if op == "max":
        return max(_oracle(x, props) for x in a)
    if op == ">":
        return _oracle(a[0], props) > _oracle(a[1], props)
    if op == "case":
        return _oracle(a[1], props) if _oracle(a[0], props) else _oracle(a[2], props)
    if op == "match":
        v = _oracle(a[0], props)
        pairs = dict(zip(a[1:-1:2], a[2:-1:2], strict=True))
        return _oracle(pairs.get(v, a[-1]), props)
    if op == "step":
        x, out = _oracle(a[0], props), a[1]
        for stop, value in zip(a[2::2], a[3::2], strict=True):
            if x >= stop:
                out = value
        return _oracle(out, props)
    if op == "interpolate":
        x, stops = _oracle(a[1], props), list(zip(a[2::2], a[3::2], strict=True))
        if x <= stops[0][0]:
            return _oracle(stops[0][1], props)
        for (x0, v0), (x1, v1) in itertools.pairwise(stops):
            if x <= x1:
                y0, y1 = _oracle(v0, props), _oracle(v1, props)
                return y0 + (x - x0) / (x1 - x0) * (y1 - y0)
        return _oracle(stops[-1][1], props)
    raise AssertionError(f"oracle does not know {op}")


def _features(client: Any, collection: str) -> list[dict[str, Any]]:
    r = client.get(f"/collections/{collection}/items?f=json&limit=10000&skipGeometry=true")
    assert r.status_code == 200
    feats: list[dict[str, Any]] = r.get_json()["features"]
    assert feats
    return feats


def _sld(client: Any, style_id: str) -> ET.Element:
    r = client.get(f"/styles/{style_id}?f=sld11")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Type"].startswith(SLD_MEDIA), r.headers["Content-Type"]
    return ET.fromstring(r.get_data())


def _class_rules(root: ET.Element, symbolizer: str) -> list[ET.Element]:
    return [r for r in root.iter(f"{{{NS['se']}}}Rule") if r.find(f"se:{symbolizer}", NS) is not None]


def _param(node: ET.Element, name: str) -> str:
    found = node.find(f".//se:SvgParameter[@name='{name}']", NS)
    assert found is not None and found.text, name
    return found.text


def test_every_published_style_has_an_sld(client: Any) -> None:
    listed = client.get("/styles?f=json").get_json()["styles"]
    assert listed
    for entry in listed:
        assert any(k["type"] == SLD_MEDIA for k in entry["links"]), entry
        root = _sld(client, entry["id"])
        assert root.tag == f"{{{NS['sld']}}}StyledLayerDescriptor" and root.get("version") == "1.1.0"
        named = root.findall("sld:NamedLayer", NS)
        assert named, entry["id"]
        for size in root.iter(f"{{{NS['se']}}}Size"):
            assert float(size.text or 0) > 0, (entry["id"], size.text)
        for text in root.iter(f"{{{NS['se']}}}TextSymbolizer"):
            assert _param(text, "font-family") == "Nanum Gothic"
            assert text.findtext("se:Label/ogc:PropertyName", namespaces=NS)


@pytest.mark.parametrize(("collection", "kind", "colour_prop"), [
    ("admin_areas", "PolygonSymbolizer", "fill-color"),
    ("air_quality", "PointSymbolizer", "circle-color"),
    ("facilities", "PointSymbolizer", "circle-color"),
    ("bike_stations", "PointSymbolizer", "circle-color"),
])
def test_each_feature_falls_in_the_class_of_its_maplibre_colour(client: Any, collection: str, kind: str,
                                                               colour_prop: str) -> None:
    root = _sld(client, collection)
    rules = _class_rules(root, kind)
    layer = next(lyr for lyr in _style(collection)["layers"] if colour_prop in lyr.get("paint", {}))
    paint = layer["paint"]
    for feature in _features(client, collection):
        props = feature["properties"]
        hits = [r for r in rules if _matches(r.find("ogc:Filter", NS), props)]
        assert len(hits) == 1, (props, [h.findtext("se:Name", namespaces=NS) for h in hits])
        assert _param(hits[0], "fill") == str(_oracle(paint[colour_prop], props)).lower(), props
        if kind == "PointSymbolizer":
            diameter = 2 * _oracle(paint["circle-radius"], props)
            assert float(hits[0].findtext(".//se:Size", namespaces=NS) or 0) == pytest.approx(diameter, abs=0.01)
    assert len(rules) >= len({str(_oracle(paint[colour_prop], f["properties"]))
                              for f in _features(client, collection)})


def test_sizes_between_interpolation_stops_stay_between_the_stops(client: Any) -> None:
    # real stations all have 10 bikes and no docks (a stop); vary docks on copies of the real rows
    root = _sld(client, "bike_stations")
    paint = _style("bike_stations")["layers"][0]["paint"]
    stops = [float(s) for s in paint["circle-radius"][4][3::2]]
    base = _features(client, "bike_stations")[0]["properties"]
    for docks in [-3, 0, 4, 10, 15, 29, 30, 45]:
        props = dict(base, docks=docks)
        hits = [r for r in _class_rules(root, "PointSymbolizer") if _matches(r.find("ogc:Filter", NS), props)]
        assert len(hits) == 1, docks
        size = float(hits[0].findtext(".//se:Size", namespaces=NS) or 0)
        below = max([s for s in stops if s <= docks], default=stops[0])
        above = min([s for s in stops if s >= docks], default=stops[-1])
        low, high = (2 * _oracle(paint["circle-radius"], dict(base, docks=v)) for v in (below, above))
        assert low - 0.01 <= size <= high + 0.01, (docks, size, low, high)
        if docks in stops:
            assert size == pytest.approx(low, abs=0.01)


def test_zoom_range_and_labels(client: Any) -> None:
    root = _sld(client, "bike_stations")
    style = _style("bike_stations")
    circle, label = style["layers"][0], style["layers"][1]
    scale = 559082264.0287178 / 2 / 2 ** circle["minzoom"]
    for rule in _class_rules(root, "PointSymbolizer"):
        assert float(rule.findtext("se:MaxScaleDenominator", namespaces=NS) or 0) == pytest.approx(scale, abs=1)
    texts = _class_rules(root, "TextSymbolizer")
    assert len(texts) == 1
    assert texts[0].findtext(".//se:Label/ogc:PropertyName", namespaces=NS) == label["layout"]["text-field"][1][1]
    assert float(texts[0].findtext("se:MaxScaleDenominator", namespaces=NS) or 0) == pytest.approx(
        559082264.0287178 / 2 / 2 ** label["minzoom"], abs=1)
    assert _param(texts[0], "font-size") == str(label["layout"]["text-size"])
    # labels come after every class, where QGIS looks for them
    rules = list(root.iter(f"{{{NS['se']}}}Rule"))
    assert rules[-1] is texts[0]


def test_a_layer_filter_becomes_part_of_every_rule(client: Any) -> None:
    style = copy.deepcopy(_style("facilities"))
    for layer in style["layers"]:
        layer["filter"] = ["==", ["get", "kind"], "library"]
    root = ET.fromstring(to_sld(style, "facilities"))
    rules = _class_rules(root, "PointSymbolizer")
    assert [_param(r, "fill") for r in rules] == ["#7b3fa0"]
    feats = _features(client, "facilities")
    shown = [f for f in feats if any(_matches(r.find("ogc:Filter", NS), f["properties"]) for r in rules)]
    assert shown and {f["properties"]["kind"] for f in shown} == {"library"}
    assert len(shown) == sum(f["properties"]["kind"] == "library" for f in feats)
    label = _class_rules(root, "TextSymbolizer")[0]
    assert all(_matches(label.find("ogc:Filter", NS), f["properties"]) == (f["properties"]["kind"] == "library")
               for f in feats)


def test_case_and_has_become_null_filters(client: Any) -> None:
    style = copy.deepcopy(_style("bike_stations"))
    style["layers"][0]["paint"]["circle-color"] = ["case", ["has", "docks"], "#ff0000", "rgba(0, 0, 255, 0.5)"]
    root = ET.fromstring(to_sld(style, "bike_stations"))
    feats = _features(client, "bike_stations")
    for f in feats:
        hits = [r for r in _class_rules(root, "PointSymbolizer") if _matches(r.find("ogc:Filter", NS), f["properties"])]
        assert len(hits) == 1
        expected = ("#ff0000", 0.85) if f["properties"].get("docks") is not None else ("#0000ff", 0.85 * 0.5)
        assert (_param(hits[0], "fill"), float(_param(hits[0], "fill-opacity"))) == pytest.approx(expected)


def test_untranslatable_expression_is_refused() -> None:
    style = copy.deepcopy(_style("facilities"))
    style["layers"][0]["paint"]["circle-color"] = ["at", 0, ["literal", ["#ff0000"]]]
    with pytest.raises(UnsupportedStyle, match="'at'"):
        to_sld(style, "facilities")


def test_collection_links_its_sld(client: Any) -> None:
    doc = client.get("/collections/admin_areas?f=json").get_json()
    sld = [k for k in doc["links"] if k["type"] == SLD_MEDIA]
    assert len(sld) == 1 and sld[0]["rel"] == "stylesheet", sld
    path = sld[0]["href"].split("://", 1)[1].split("/", 1)[1]
    assert client.get("/" + path).status_code == 200
    html = client.get("/collections/admin_areas?f=html&lang=ko").get_data(as_text=True)
    assert "f=sld11" in html


@pytest.mark.parametrize(("path", "status"), [
    ("/styles/bike_stations?f=sld10", 400),
    ("/styles/nope?f=sld11", 404),
    ("/styles/land?f=sld11", 404),  # no parcels loaded: not published
])
def test_sld_errors_are_ogc_json(client: Any, path: str, status: int) -> None:
    r = client.get(path)
    assert r.status_code == status
    body = r.get_json()
    assert body["code"] and body["description"] and "Traceback" not in r.get_data(as_text=True)


def test_scale_of_zoom_zero_matches_the_ogc_pixel() -> None:
    # MapLibre zoom z (512 px tiles) shows the WebMercatorQuad level z+1 (256 px tiles, 0.28 mm pixel)
    style = _style("cctv")
    root = ET.fromstring(to_sld(style, "cctv"))
    rule = _class_rules(root, "PointSymbolizer")[0]
    level = style["layers"][0]["minzoom"] + 1
    resolution = 2 * math.pi * 6378137 / 256 / 2**level
    assert float(rule.findtext("se:MaxScaleDenominator", namespaces=NS) or 0) == pytest.approx(
        resolution / 0.00028, abs=0.5)  # written as an integer: QGIS reads no decimals there
