"""Map-page fixes users ran into: the /map popup and attribution in Chromium, the landing page, the items table.

tests/browser/map_pages.mjs drives headless Debian Chromium on the live server at a phone (390x844) and a desktop
size and reports what it measured; the landing page is checked on its HTML from the Flask app.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
import requests
from browser_helpers import run_script


@pytest.fixture(scope="module")
def pages(live_server: str) -> dict[str, Any]:
    """Run the browser script once for the module."""
    doc = run_script("map_pages.mjs", live_server, "map-pages-report.json", timeout=240)
    assert not doc["pageErrors"], doc["pageErrors"]
    return doc


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_popup_opens_at_its_top_inside_the_viewport(pages: dict[str, Any], size: str) -> None:
    seen = pages["map"][size]
    popup = seen.get("popup")
    assert popup, f"no bike station could be clicked at {seen['viewport']}"
    assert popup["heading"], popup
    assert popup["scrollTop"] == 0, popup
    vw, vh = seen["viewport"]["width"], seen["viewport"]["height"]
    rect = popup["rect"]
    assert rect["left"] >= 0 and rect["top"] >= 0, (rect, seen["viewport"])
    assert rect["right"] <= vw and rect["bottom"] <= vh, (rect, seen["viewport"])


@pytest.mark.parametrize("size", ["phone", "desktop", "citizen"])
def test_attribution_is_collapsed_and_lists_each_source_once(pages: dict[str, Any], live_server: str,
                                                             size: str) -> None:
    attrib = pages["citizen" if size == "citizen" else "map"].get(size, pages["citizen"])["attribution"]
    assert "maplibregl-compact" in attrib["classes"].split(), attrib
    assert not attrib["open"] and "maplibregl-compact-show" not in attrib["classes"].split(), attrib
    assert attrib["height"] < 30, attrib
    entries = attrib["entries"]
    assert len(entries) == len(set(entries)), entries
    collections = requests.get(f"{live_server}/collections?f=json", timeout=30).json()["collections"]
    sources = {c["attribution"] for c in collections if c.get("attribution")}
    if size == "citizen":  # the citizen page shows its own layers only
        assert entries and set(entries) <= sources, set(entries) - sources
        return
    # MapLibre leaves out an attribution that is part of another one; every other source is one entry of its own
    own = {s for s in sources if not any(s != t and s in t for t in sources)}
    assert own <= set(entries), own - set(entries)
    for entry in entries:  # an entry is one source (or a basemap's), never several joined (as a TileJSON's is)
        assert entry in sources or not any(s in entry for s in sources), entry


def test_items_table_korean_headers_are_one_line(pages: dict[str, Any]) -> None:
    headers = [h for h in pages["items"]["headers"] if re.search("[가-힣]", h["text"])]
    assert headers, pages["items"]
    for h in headers:
        assert h["height"] < 1.5 * h["lineHeight"], h


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(v or "" for k, v in attrs if k == "href")

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())


def _landing(client: Any, lang: str) -> _Links:
    r = client.get(f"/?f=html&lang={lang}")
    assert r.status_code == 200
    parsed = _Links()
    parsed.feed(r.get_data(as_text=True))
    return parsed


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_landing_links_to_the_map_pages(client: Any, lang: str) -> None:
    hrefs = _landing(client, lang).hrefs
    paths = {re.sub(r"^https?://[^/]+", "", h).split("?")[0] for h in hrefs}
    assert {"/map", "/citizen"} <= paths, hrefs


def test_landing_labels_follow_the_language(client: Any) -> None:
    ko, en = _landing(client, "ko").text, _landing(client, "en").text
    english_labels = ["the API definition (OpenAPI 3.0, JSON)", "conformance classes", "vector tiles of all layers",
                      "tile matrix sets", "processes", "jobs"]
    for label in english_labels:
        assert label not in ko, (label, ko)
        assert label in en, (label, en)
    assert any(re.search("[가-힣]", t) for t in ko if "지도" in t or "적합성" in t), ko
    assert not any(re.search("[가-힣]", t) for t in en if t not in ("한국어",)), en
