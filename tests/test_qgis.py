"""QGIS 3.22 (Debian python3-qgis) reads our SLD: rule-based classes, sizes, labels, and renders their colours.

tests/qgis/sld_check.py runs under Debian's /usr/bin/python3 (our virtualenv cannot import qgis): it loads the
collection from the live server over OGC API Features, applies /styles/{id}?f=sld11 with loadSldStyle, reports what
QGIS made of it and renders a PNG (tests/artifacts/qgis-<id>.png).
"""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "tests" / "artifacts"
QGIS_PYTHON = "/usr/bin/python3"
NS = {"se": "http://www.opengis.net/se", "ogc": "http://www.opengis.net/ogc"}


def _qgis_available() -> bool:
    res = subprocess.run([QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True, timeout=60, check=False,
                         env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    return res.returncode == 0


@pytest.fixture(scope="module")
def qgis() -> str:
    if not Path(QGIS_PYTHON).exists() or not _qgis_available():
        pytest.skip("QGIS is not installed for Debian's Python (./run pytest installs python3-qgis as root)")
    return QGIS_PYTHON


def _check(qgis: str, base: str, collection: str) -> tuple[dict[str, Any], ET.Element]:
    r = requests.get(f"{base}/styles/{collection}", params={"f": "sld11"}, timeout=30)
    assert r.status_code == 200, r.text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    sld = ARTIFACTS / f"qgis-{collection}.sld"
    sld.write_bytes(r.content)
    png = ARTIFACTS / f"qgis-{collection}.png"
    res = subprocess.run([qgis, str(REPO / "tests" / "qgis" / "sld_check.py"), base, collection, str(sld), str(png)],
                         capture_output=True, text=True, timeout=180, check=False,
                         env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert res.returncode == 0, res.stderr[-3000:]
    report: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    assert png.stat().st_size > 0
    return report, ET.fromstring(r.content)


def _rgb(hex_: str) -> tuple[int, int, int]:
    return int(hex_[1:3], 16), int(hex_[3:5], 16), int(hex_[5:7], 16)


def _on_white(hex_: str, alpha: float) -> tuple[int, ...]:
    return tuple(round(c * alpha + 255 * (1 - alpha)) for c in _rgb(hex_))


def _shown(colors: dict[str, int], rgb: tuple[int, ...], tolerance: int = 6) -> bool:
    return any(max(abs(a - b) for a, b in zip(_rgb(c), rgb, strict=True)) <= tolerance and n >= 4
               for c, n in colors.items())


@pytest.mark.parametrize("collection", ["bike_stations", "air_quality", "admin_areas"])
def test_qgis_reads_the_sld(qgis: str, live_server: str, collection: str) -> None:
    report, sld = _check(qgis, live_server, collection)
    api = requests.get(f"{live_server}/api", timeout=30).status_code  # QGIS reads /api first: say so if it fails
    assert report["valid"] and report["features"] > 0, (report, f"/api answered {api}")
    assert report["renderer"] == "RuleRenderer", report["renderer"]
    classes = [r for r in sld.iter(f"{{{NS['se']}}}Rule") if r.find("se:TextSymbolizer", NS) is None]
    assert len(report["rules"]) == len(classes) > 1
    sizes = [float(s.text or 0) for s in sld.iter(f"{{{NS['se']}}}Size")]
    assert sorted(r["size"] for r in report["rules"] if "size" in r) == pytest.approx(sorted(sizes))
    assert all(r["size"] > 0 for r in report["rules"] if "size" in r)
    # QGIS's own reading of the filters puts every feature in exactly one colour class
    fills = [r for r in report["rules"] if r["label"].split(":")[0].endswith(("-circle", "-fill"))]
    assert sum(r["matching"] for r in fills) == report["features"], fills
    # labels on, from the property the SLD names, in Nanum Gothic, from the zoom the style says
    label = sld.find(".//se:TextSymbolizer/se:Label/ogc:PropertyName", NS)
    assert report["labels"] and label is not None
    assert [lr["field"] for lr in report["labelRules"]] == [label.text]
    assert report["labelRules"][0]["font"] == "Nanum Gothic"
    # every class that has features is drawn in its colour (on the white background, with its opacity)
    for rule in fills:
        if rule["matching"]:
            rgb = _on_white(rule["color"], rule["fillAlpha"])
            assert _shown(report["colors"], rgb), (rule["label"], rgb)
