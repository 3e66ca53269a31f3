"""MapLibre style -> OGC SLD 1.1 / Symbology Encoding 1.1, for desktop GIS (QGIS, ArcGIS) that cannot read MapLibre.

One declaration (styles/<id>.json) gives both encodings.  Data-driven expressions (`match`, `step`, `interpolate`,
`case`, `coalesce`, comparisons, layer filters) are translated by their finite domain: every property an
expression reads is split into the classes the expression distinguishes (match labels, other, null; numeric
intervals between stops and thresholds), the style is evaluated once per combination of classes, and the
combinations that look the same become one SE Rule whose ogc:Filter is their union.  Zoom-dependent values are
taken at `REFERENCE_ZOOM` (within the layer's zoom range); minzoom/maxzoom become Max/MinScaleDenominator.
Labels: one TextSymbolizer per layer, labelled with the first property its `text-field` reads, in Nanum Gothic.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

SLD_MEDIA = "application/vnd.ogc.sld+xml;version=1.1"
REFERENCE_ZOOM = 14.0
FONT_FAMILY = "Nanum Gothic"
COLLECTION_KEY = "sejong:collection"
MAX_COMBINATIONS = 20000
# scale denominator of MapLibre zoom 0 (512 px tiles) at the OGC standard pixel of 0.28 mm
_SCALE_Z0 = 559082264.0287178 / 2

NS = {"sld": "http://www.opengis.net/sld", "se": "http://www.opengis.net/se", "ogc": "http://www.opengis.net/ogc",
      "xlink": "http://www.w3.org/1999/xlink", "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)


class UnsupportedStyle(ValueError):
    """The style uses something this translation does not cover."""


class _EvalError(Exception):
    """An expression error at evaluation time: MapLibre then uses the property's default."""


# ------------------------------------------------------------------ expressions

_OTHER = "\x00other"  # a value that equals no match label


def _num(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _EvalError(f"not a number: {v!r}")
    return float(v)


def _to_number(args: Sequence[Any]) -> float:
    for v in args:
        if v is None:
            return 0.0
        if isinstance(v, bool):
            return 1.0 if v else 0.0
        try:
            return float(v)
        except (TypeError, ValueError):
            continue
    raise _EvalError("to-number: nothing converts")


def _to_string(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _interpolate(kind: Sequence[Any], x: float, stops: Sequence[Any], ev: Callable[[Any], Any]) -> Any:
    pairs = [(float(stops[i]), stops[i + 1]) for i in range(0, len(stops), 2)]
    if x <= pairs[0][0]:
        return ev(pairs[0][1])
    if x >= pairs[-1][0]:
        return ev(pairs[-1][1])
    for (x0, v0), (x1, v1) in itertools.pairwise(pairs):
        if x0 <= x <= x1:
            t = (x - x0) / (x1 - x0)
            if kind[0] == "exponential" and float(kind[1]) != 1:
                base = float(kind[1])
                t = (base ** (x - x0) - 1) / (base ** (x1 - x0) - 1)
            a, b = ev(v0), ev(v1)
            if isinstance(a, str) or isinstance(b, str):  # colours: the nearer stop
                return a if t < 0.5 else b
            return _num(a) + t * (_num(b) - _num(a))
    raise _EvalError("interpolate")


def _checked(fn: Callable[[float], float]) -> Callable[[float], float]:
    def run(x: float) -> float:
        try:
            return fn(x)
        except (ValueError, OverflowError) as exc:
            raise _EvalError(str(exc)) from exc
    return run


_MATH: dict[str, Callable[[float], float]] = {"sqrt": math.sqrt, "ln": math.log, "log10": math.log10,
                                              "log2": math.log2, "abs": abs, "floor": math.floor, "ceil": math.ceil,
                                              "round": round}
_UNARY = {name: _checked(fn) for name, fn in _MATH.items()}
# a stop on f(x) is the stop f⁻¹(stop) on x, for the monotonic functions a property may pass through
_INVERSE: dict[str, Callable[[float], float]] = {"sqrt": lambda y: y * y, "ln": math.exp,
                                                  "log10": lambda y: 10.0**y, "log2": lambda y: 2.0**y}


def evaluate(expr: Any, props: dict[str, Any], zoom: float) -> Any:
    """Value of a MapLibre expression for a feature's properties at a zoom (the subset our styles use)."""
    def ev(e: Any) -> Any:
        return evaluate(e, props, zoom)

    if not isinstance(expr, list):
        return expr
    if not expr or not isinstance(expr[0], str):
        return [ev(e) for e in expr]
    op, args = expr[0], expr[1:]
    if op == "literal":
        return args[0]
    if op == "get":
        return props.get(args[0])
    if op == "has":
        return props.get(args[0]) is not None
    if op == "zoom":
        return zoom
    if op == "coalesce":
        for a in args:
            v = ev(a)
            if v is not None:
                return v
        return None
    if op == "match":
        value = ev(args[0])
        for i in range(1, len(args) - 1, 2):
            labels = args[i] if isinstance(args[i], list) else [args[i]]
            if value in labels and not isinstance(value, bool):
                return ev(args[i + 1])
        return ev(args[-1])
    if op == "case":
        for i in range(0, len(args) - 1, 2):
            if ev(args[i]) is True:
                return ev(args[i + 1])
        return ev(args[-1])
    if op == "step":
        x = _num(ev(args[0]))
        out = args[1]
        for i in range(2, len(args), 2):
            if x >= float(args[i]):
                out = args[i + 1]
        return ev(out)
    if op == "interpolate":
        return _interpolate(args[0], _num(ev(args[1])), args[2:], ev)
    if op == "to-number":
        return _to_number([ev(a) for a in args])
    if op in ("to-string", "string", "number", "to-boolean", "boolean", "to-color"):
        v = ev(args[0])
        if op == "to-string":
            return _to_string(v)
        return bool(v) if op in ("to-boolean", "boolean") else v
    if op in ("concat", "format"):
        parts = [a for a in args if not isinstance(a, dict)] if op == "format" else args
        return "".join(_to_string(ev(a)) for a in parts)
    if op in _UNARY:
        return _UNARY[op](_num(ev(args[0])))
    if op == "^":
        return _num(ev(args[0])) ** _num(ev(args[1]))
    if op in ("max", "min", "+", "*"):
        nums = [_num(ev(a)) for a in args]
        reduce: dict[str, Callable[[list[float]], float]] = {"max": max, "min": min, "+": sum, "*": math.prod}
        return reduce[op](nums)
    if op in ("-", "/"):
        a = _num(ev(args[0]))
        if len(args) == 1:
            return -a
        b = _num(ev(args[1]))
        if op == "/" and b == 0:
            raise _EvalError("division by zero")
        return a - b if op == "-" else a / b
    if op in ("==", "!="):
        same = ev(args[0]) == ev(args[1])
        return same if op == "==" else not same
    if op in ("<", "<=", ">", ">="):
        a, b = ev(args[0]), ev(args[1])
        if a is None or b is None or isinstance(a, str) != isinstance(b, str):
            raise _EvalError("comparison of different types")
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if op == "!":
        return ev(args[0]) is not True
    if op == "all":
        return all(ev(a) is True for a in args)
    if op == "any":
        return any(ev(a) is True for a in args)
    if op == "in":
        needle, hay = ev(args[0]), ev(args[1])
        return needle in hay if hay is not None else False
    raise UnsupportedStyle(f"expression {op!r} is not translated to SLD")


# ------------------------------------------------------------------ property domains


@dataclass
class _Domain:
    """The classes one property is split into: match labels (categorical) or numeric thresholds."""

    name: str
    labels: list[Any] = field(default_factory=list)
    thresholds: set[float] = field(default_factory=set)

    def atoms(self) -> list[tuple[str, Any, Any]]:
        """(kind, key, representative value) of every class, null included."""
        out: list[tuple[str, Any, Any]] = [("null", None, None)]
        if self.labels:
            out += [("eq", lab, lab) for lab in self.labels]
            out.append(("other", None, _OTHER))
        elif self.thresholds:  # the stops themselves (data often sits on them) and the open intervals between
            ts = sorted(self.thresholds)
            bounds = [-math.inf, *ts, math.inf]
            for lo, hi in itertools.pairwise(bounds):
                rep = lo + 1 if hi == math.inf else hi - 1 if lo == -math.inf else (lo + hi) / 2
                out.append(("range", (lo, hi, False, False), rep))
                if hi != math.inf:
                    out.append(("range", (hi, hi, True, True), hi))
        else:
            out.append(("present", None, 1))
        return out


def _property_of(expr: Any) -> list[str]:
    """Properties an expression passes through unchanged (get, and to-number/to-string/coalesce of gets)."""
    if not isinstance(expr, list) or not expr:
        return []
    if expr[0] == "get" and len(expr) == 2 and isinstance(expr[1], str):
        return [expr[1]]
    if expr[0] in ("to-number", "to-string", "number", "string", "coalesce"):
        return [p for a in expr[1:] for p in _property_of(a)]
    return []


def _numeric_sources(expr: Any) -> list[tuple[str, Callable[[float], float]]]:
    """Properties a numeric input is a monotonic function of, each with the map from input stops to its stops."""
    if not isinstance(expr, list) or not expr:
        return []
    op, args = expr[0], expr[1:]
    if op in _INVERSE:
        return [(p, _compose(f, _INVERSE[op])) for p, f in _numeric_sources(args[0])]
    if op in ("+", "-", "*", "/") and len(args) == 2 and isinstance(args[1], int | float) and args[1] != 0:
        k = float(args[1])
        undo: dict[str, Callable[[float], float]] = {
            "+": lambda y: y - k, "-": lambda y: y + k, "*": lambda y: y / k, "/": lambda y: y * k}
        return [(p, _compose(f, undo[op])) for p, f in _numeric_sources(args[0])]
    return [(p, _identity) for p in _property_of(expr)]


def _identity(y: float) -> float:
    return y


def _compose(outer: Callable[[float], float], inner: Callable[[float], float]) -> Callable[[float], float]:
    return lambda y: outer(inner(y))


def _collect(expr: Any, domains: dict[str, _Domain]) -> None:
    """Add the properties an expression reads, and the classes it tells apart, to `domains`."""
    if not isinstance(expr, list) or not expr or not isinstance(expr[0], str):
        if isinstance(expr, list):
            for e in expr:
                _collect(e, domains)
        return
    op, args = expr[0], expr[1:]
    if op == "literal":
        return
    if op in ("get", "has") and isinstance(args[0], str):
        domains.setdefault(args[0], _Domain(args[0]))
    for prop in _property_of(args[0]) if op == "match" else []:
        dom = domains.setdefault(prop, _Domain(prop))
        for i in range(1, len(args) - 1, 2):
            for lab in args[i] if isinstance(args[i], list) else [args[i]]:
                if lab not in dom.labels:
                    dom.labels.append(lab)
    if op in ("step", "interpolate"):
        source, stops = (args[0], args[2::2]) if op == "step" else (args[1], args[2::2])
        for prop, to_prop in _numeric_sources(source):
            with contextlib.suppress(ValueError, OverflowError):
                domains.setdefault(prop, _Domain(prop)).thresholds.update(to_prop(float(t)) for t in stops)
    if op in ("==", "!=", "<", "<=", ">", ">=") and len(args) == 2:
        for a, b in (args, args[::-1]):
            for prop in _property_of(a):
                dom = domains.setdefault(prop, _Domain(prop))
                if isinstance(b, int | float) and not isinstance(b, bool):
                    dom.thresholds.add(float(b))
                elif isinstance(b, str) and b not in dom.labels:
                    dom.labels.append(b)
    for a in args:
        _collect(a, domains)


# ------------------------------------------------------------------ filters


Filter = tuple[Any, ...]  # ("and"|"or", [..]) | ("not", f) | ("cmp", op, prop, value) | ("null", prop)


def _atom_filter(name: str, atom: tuple[str, Any, Any]) -> Filter:
    kind, key, _ = atom
    if kind == "null":
        return ("null", name)
    if kind == "eq":
        return ("cmp", "PropertyIsEqualTo", name, key)
    if kind == "present":
        return ("not", ("null", name))
    lo, hi, lo_in, hi_in = key
    if lo == hi:
        return ("cmp", "PropertyIsEqualTo", name, lo)
    parts: list[Filter] = []
    if lo != -math.inf:
        parts.append(("cmp", "PropertyIsGreaterThanOrEqualTo" if lo_in else "PropertyIsGreaterThan", name, lo))
    if hi != math.inf:
        parts.append(("cmp", "PropertyIsLessThanOrEqualTo" if hi_in else "PropertyIsLessThan", name, hi))
    if not parts:
        return ("not", ("null", name))
    return parts[0] if len(parts) == 1 else ("and", parts)


def _set_filter(dom: _Domain, atoms: list[tuple[str, Any, Any]], chosen: frozenset[int]) -> Filter:
    """Filter of a set of classes of one property (ranges next to each other joined)."""
    kinds = {atoms[i][0] for i in chosen}
    name = dom.name
    if "other" in kinds:  # everything but some labels
        excluded = [a[1] for i, a in enumerate(atoms) if a[0] == "eq" and i not in chosen]
        conds: list[Filter] = [("cmp", "PropertyIsNotEqualTo", name, lab) for lab in excluded]
        not_null = ("not", ("null", name))
        if "null" in kinds:
            body = conds[0] if len(conds) == 1 else ("and", conds)
            return ("or", [("null", name), body]) if conds else ("or", [("null", name), not_null])
        conds.insert(0, not_null)
        return conds[0] if len(conds) == 1 else ("and", conds)
    parts: list[Filter] = []
    ranges = sorted((atoms[i][1] for i in chosen if atoms[i][0] == "range"), key=lambda r: (r[0], not r[2], r[1]))
    joined: list[tuple[float, float, bool, bool]] = []
    for lo, hi, lo_in, hi_in in ranges:
        if joined and joined[-1][1] == lo and (joined[-1][3] or lo_in):
            joined[-1] = (joined[-1][0], hi, joined[-1][2], hi_in)
        else:
            joined.append((lo, hi, lo_in, hi_in))
    parts += [_atom_filter(name, ("range", r, None)) for r in joined]
    parts += [_atom_filter(name, atoms[i]) for i in sorted(chosen) if atoms[i][0] in ("eq", "null", "present")]
    return parts[0] if len(parts) == 1 else ("or", parts)


Term = tuple[frozenset[int], ...]


def _merge(terms: set[Term]) -> set[Term]:
    """Join terms that differ in one property only, until none do (the union stays the same cells)."""
    changed = True
    while changed:
        changed = False
        width = len(next(iter(terms))) if terms else 0
        for d in range(width):
            groups: dict[Term, set[int]] = {}
            for t in terms:
                key = t[:d] + t[d + 1:]
                groups.setdefault(key, set()).update(t[d])
            merged = {(*k[:d], frozenset(s), *k[d:]) for k, s in groups.items()}
            if len(merged) < len(terms):
                terms, changed = merged, True
    return terms


def _terms_filter(doms: list[_Domain], atoms: list[list[tuple[str, Any, Any]]], terms: set[Term]) -> Filter | None:
    ors: list[Filter] = []
    for t in sorted(terms, key=lambda t: [sorted(s) for s in t]):
        ands = [_set_filter(doms[d], atoms[d], s) for d, s in enumerate(t) if len(s) < len(atoms[d])]
        if not ands:
            return None  # every feature
        ors.append(ands[0] if len(ands) == 1 else ("and", ands))
    return ors[0] if len(ors) == 1 else ("or", ors)


# ------------------------------------------------------------------ symbolizers

_PAINT = {
    "circle": {"circle-color": "#000000", "circle-radius": 5, "circle-opacity": 1, "circle-stroke-color": "#000000",
               "circle-stroke-width": 0, "circle-stroke-opacity": 1},
    "fill": {"fill-color": "#000000", "fill-opacity": 1, "fill-outline-color": None},
    "line": {"line-color": "#000000", "line-width": 1, "line-opacity": 1, "line-dasharray": None},
    "symbol": {"text-color": "#000000", "text-size": 16, "text-halo-color": "rgba(0,0,0,0)", "text-halo-width": 0,
               "text-anchor": "center", "text-offset": [0, 0]},
}
_NAMED = {"white": "#ffffff", "black": "#000000", "transparent": "rgba(0,0,0,0)"}


def css_color(value: Any) -> tuple[str, float]:
    """A CSS colour as (#rrggbb, opacity)."""
    text = _NAMED.get(str(value).strip().lower(), str(value).strip().lower())
    m = re.fullmatch(r"#([0-9a-f]{3}|[0-9a-f]{6}|[0-9a-f]{8})", text)
    if m:
        h = m.group(1)
        if len(h) == 3:
            h = "".join(c * 2 for c in h)
        alpha = int(h[6:8], 16) / 255 if len(h) == 8 else 1.0
        return f"#{h[:6]}", alpha
    m = re.fullmatch(r"rgba?\(([^)]*)\)", text)
    if m:
        parts = [p.strip() for p in m.group(1).replace("/", ",").split(",")]
        rgb = [max(0, min(255, round(float(p)))) for p in parts[:3]]
        alpha = float(parts[3]) if len(parts) > 3 else 1.0
        return "#" + "".join(f"{c:02x}" for c in rgb), alpha
    raise UnsupportedStyle(f"colour {value!r} is not translated to SLD")


def _scale(zoom: float) -> float:
    return _SCALE_Z0 / 2**zoom


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(round(float(x), 6))


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    prefix, local = tag.split(":")
    e = ET.SubElement(parent, f"{{{NS[prefix]}}}{local}", attrib)
    if text is not None:
        e.text = text
    return e


def _param(parent: ET.Element, name: str, value: str) -> None:
    _el(parent, "se:SvgParameter", value, name=name)


def _fill(parent: ET.Element, color: Any, opacity: float) -> None:
    hex_, alpha = css_color(color)
    f = _el(parent, "se:Fill")
    _param(f, "fill", hex_)
    _param(f, "fill-opacity", _fmt(round(opacity * alpha, 3)))


def _stroke(parent: ET.Element, color: Any, width: float, opacity: float, dash: Sequence[float] | None = None) -> None:
    hex_, alpha = css_color(color)
    s = _el(parent, "se:Stroke")
    _param(s, "stroke", hex_)
    _param(s, "stroke-width", _fmt(round(width, 3)))
    _param(s, "stroke-opacity", _fmt(round(opacity * alpha, 3)))
    if dash:
        _param(s, "stroke-dasharray", " ".join(_fmt(round(d * width, 3)) for d in dash))


def _symbolizer(rule: ET.Element, kind: str, p: dict[str, Any]) -> None:
    if kind == "circle":
        g = _el(_el(rule, "se:PointSymbolizer"), "se:Graphic")
        mark = _el(g, "se:Mark")
        _el(mark, "se:WellKnownName", "circle")
        _fill(mark, p["circle-color"], float(p["circle-opacity"]))
        if float(p["circle-stroke-width"]) > 0:
            _stroke(mark, p["circle-stroke-color"], float(p["circle-stroke-width"]), float(p["circle-stroke-opacity"]))
        _el(g, "se:Size", _fmt(round(2 * float(p["circle-radius"]), 2)))
    elif kind == "fill":
        sym = _el(rule, "se:PolygonSymbolizer")
        _fill(sym, p["fill-color"], float(p["fill-opacity"]))
        if p["fill-outline-color"] is not None:
            _stroke(sym, p["fill-outline-color"], 1, float(p["fill-opacity"]))
    elif kind == "line":
        sym = _el(rule, "se:LineSymbolizer")
        _stroke(sym, p["line-color"], float(p["line-width"]), float(p["line-opacity"]), p["line-dasharray"])


_ANCHORS = {"center": (0.5, 0.5), "top": (0.5, 1.0), "bottom": (0.5, 0.0), "left": (0.0, 0.5), "right": (1.0, 0.5),
            "top-left": (0.0, 1.0), "top-right": (1.0, 1.0), "bottom-left": (0.0, 0.0), "bottom-right": (1.0, 0.0)}


def _label_property(expr: Any) -> str | None:
    """The first property a text-field reads."""
    if isinstance(expr, str):
        m = re.search(r"\{([^}]+)\}", expr)
        return m.group(1) if m else None
    if isinstance(expr, list):
        if expr and expr[0] == "get" and isinstance(expr[1], str):
            return expr[1]
        for e in expr:
            found = _label_property(e)
            if found:
                return found
    return None


def _text_symbolizer(rule: ET.Element, prop: str, p: dict[str, Any], geometry: str) -> None:
    sym = _el(rule, "se:TextSymbolizer")
    _el(_el(sym, "se:Label"), "ogc:PropertyName", prop)
    font = _el(sym, "se:Font")
    size = float(p["text-size"])
    _param(font, "font-family", FONT_FAMILY)
    _param(font, "font-size", _fmt(round(size, 2)))
    placement = _el(_el(sym, "se:LabelPlacement"), "se:PointPlacement")
    ax, ay = _ANCHORS.get(str(p["text-anchor"]), (0.5, 0.5))
    anchor = _el(placement, "se:AnchorPoint")
    _el(anchor, "se:AnchorPointX", _fmt(ax))
    _el(anchor, "se:AnchorPointY", _fmt(ay))
    dx, dy = (float(v) * size for v in p["text-offset"])
    if geometry == "point" and (dx or dy):
        disp = _el(placement, "se:Displacement")
        _el(disp, "se:DisplacementX", _fmt(round(dx, 2)))
        _el(disp, "se:DisplacementY", _fmt(round(-dy, 2)))
    if float(p["text-halo-width"]) > 0:
        halo = _el(sym, "se:Halo")
        _el(halo, "se:Radius", _fmt(round(float(p["text-halo-width"]), 2)))
        _fill(halo, p["text-halo-color"], 1.0)
    _fill(sym, p["text-color"], 1.0)


def _filter_xml(parent: ET.Element, f: Filter) -> None:
    kind = f[0]
    if kind in ("and", "or"):
        node = _el(parent, "ogc:And" if kind == "and" else "ogc:Or")
        for sub in f[1]:
            _filter_xml(node, sub)
    elif kind == "not":
        _filter_xml(_el(parent, "ogc:Not"), f[1])
    elif kind == "null":
        _el(_el(parent, "ogc:PropertyIsNull"), "ogc:PropertyName", f[1])
    else:
        node = _el(parent, f"ogc:{f[1]}")
        _el(node, "ogc:PropertyName", f[2])
        value = f[3]
        _el(node, "ogc:Literal", _fmt(value) if isinstance(value, float) else _to_string(value))


# ------------------------------------------------------------------ rules


@dataclass
class Rule:
    """One SE rule: a title, an optional filter, the zoom range, what it draws."""

    title: str
    kind: str
    paint: dict[str, Any]
    filter: Filter | None
    minzoom: float | None
    maxzoom: float | None
    label: str | None = None


def _zoom_for(layer: dict[str, Any]) -> float:
    lo = float(layer.get("minzoom", 0))
    hi = float(layer.get("maxzoom", 24))
    return min(max(REFERENCE_ZOOM, lo), hi - 0.5 if hi - 0.5 >= lo else lo)


def _props(layer: dict[str, Any], kind: str) -> dict[str, Any]:
    defaults = _PAINT[kind]
    merged = {**(layer.get("paint") or {}), **(layer.get("layout") or {})}
    return {k: merged.get(k, v) for k, v in defaults.items()}


def _describe(p: dict[str, Any], kind: str) -> str:
    if kind == "circle":
        return f"{p['circle-color']} ⌀{_fmt(round(2 * float(p['circle-radius']), 2))}"
    if kind == "fill":
        return str(p["fill-color"])
    return f"{p['line-color']} {_fmt(round(float(p['line-width']), 2))}"


def layer_rules(layer: dict[str, Any]) -> list[Rule]:
    """SE rules drawing one MapLibre layer (none for layers without an SLD counterpart)."""
    kind = layer.get("type")
    if kind not in _PAINT or (layer.get("layout") or {}).get("visibility") == "none":
        return []
    zoom = _zoom_for(layer)
    exprs = _props(layer, kind)
    flt = layer.get("filter")
    domains: dict[str, _Domain] = {}
    if kind != "symbol":
        for v in exprs.values():
            _collect(v, domains)
    if flt is not None:
        _collect(flt, domains)
    doms = sorted(domains.values(), key=lambda d: d.name)
    atoms = [d.atoms() for d in doms]
    if math.prod(len(a) for a in atoms) > MAX_COMBINATIONS:
        raise UnsupportedStyle(f"layer {layer['id']!r} reads too many property classes for SLD")
    groups: dict[str, tuple[dict[str, Any], set[Term]]] = {}
    for cell in itertools.product(*(range(len(a)) for a in atoms)):
        props = {d.name: atoms[i][c][2] for i, (d, c) in enumerate(zip(doms, cell, strict=True))}
        if flt is not None and evaluate(flt, props, zoom) is not True:
            continue
        paint = {}
        for k, v in exprs.items():
            try:
                paint[k] = evaluate(v, props if kind != "symbol" else {}, zoom)
            except _EvalError:
                paint[k] = _PAINT[kind][k]
        key = repr(sorted(paint.items()))
        groups.setdefault(key, (paint, set()))[1].add(tuple(frozenset([c]) for c in cell))
    label = _label_property((layer.get("layout") or {}).get("text-field")) if kind == "symbol" else None
    if kind == "symbol" and label is None:
        return []
    out = []
    for paint, cells in groups.values():
        title = f"{layer['id']}: {label}" if kind == "symbol" else f"{layer['id']}: {_describe(paint, kind)}"
        out.append(Rule(title, kind, paint, _terms_filter(doms, atoms, _merge(cells)),
                        layer.get("minzoom"), layer.get("maxzoom"), label))
    return out


def _rule_xml(parent: ET.Element, rule: Rule, geometry: str) -> None:
    node = _el(parent, "se:Rule")
    _el(node, "se:Name", rule.title)
    _el(_el(node, "se:Description"), "se:Title", rule.title)
    if rule.filter is not None:
        _filter_xml(_el(node, "ogc:Filter"), rule.filter)
    if rule.maxzoom is not None:
        _el(node, "se:MinScaleDenominator", str(round(_scale(float(rule.maxzoom)))))  # QGIS reads integers only
    if rule.minzoom is not None:
        _el(node, "se:MaxScaleDenominator", str(round(_scale(float(rule.minzoom)))))
    if rule.kind == "symbol" and rule.label:
        _text_symbolizer(node, rule.label, rule.paint, geometry)
    else:
        _symbolizer(node, rule.kind, rule.paint)


def _geometry_of(layers: Iterable[dict[str, Any]]) -> str:
    kinds = {lyr.get("type") for lyr in layers}
    return "point" if "circle" in kinds else "polygon" if "fill" in kinds else "line"


def to_sld(style: dict[str, Any], default_collection: str, titles: dict[str, str] | None = None) -> str:
    """The SLD 1.1 document of a MapLibre style: one NamedLayer per collection, rules in drawing order, labels last."""
    by_collection: dict[str, list[dict[str, Any]]] = {}
    for lyr in style.get("layers", []):
        cid = (lyr.get("metadata") or {}).get(COLLECTION_KEY, default_collection)
        if lyr.get("type") in _PAINT:
            by_collection.setdefault(cid, []).append(lyr)
    root = ET.Element(f"{{{NS['sld']}}}StyledLayerDescriptor", {
        "version": "1.1.0",
        f"{{{NS['xsi']}}}schemaLocation":
            "http://www.opengis.net/sld http://schemas.opengis.net/sld/1.1.0/StyledLayerDescriptor.xsd"})
    for cid, lyrs in by_collection.items():
        named = _el(root, "sld:NamedLayer")
        _el(named, "se:Name", cid)
        user = _el(named, "sld:UserStyle")
        _el(user, "se:Name", str(style.get("name") or cid))
        title = (titles or {}).get(cid)
        if title:
            _el(_el(user, "se:Description"), "se:Title", title)
        fts = _el(user, "se:FeatureTypeStyle")
        geometry = _geometry_of(lyrs)
        rules = [r for lyr in lyrs for r in layer_rules(lyr)]
        for rule in sorted(rules, key=lambda r: r.kind == "symbol"):
            _rule_xml(fts, rule, geometry)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
