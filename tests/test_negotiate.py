"""Language negotiation: RFC 9110 Accept-Language (q-values, order) with RFC 4647 lookup; ?lang= wins; default ko."""

from __future__ import annotations

from typing import Any

import pytest

from core.config import load_config

TITLE = load_config().layers["bike_stations"].title


def title(client: Any, headers: dict[str, str], query: str = "") -> str:
    """The collection title the server chose for these request headers."""
    resp = client.get(f"/collections/bike_stations?f=json{query}", headers=headers)
    assert resp.status_code == 200
    return str(resp.get_json()["title"])


@pytest.mark.parametrize(("header", "lang"), [
    ("ko-KR,en,*", "ko"),                 # QGIS on a Korean desktop
    ("en-US,*", "en"),
    ("en;q=0.5,ko;q=0.9", "ko"),          # q-values beat order
    ("ko;q=0.5,en;q=0.9", "en"),
    ("en-GB,en;q=0.9,ko;q=0.8", "en"),
    ("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7", "ko"),
    ("fr-FR,en;q=0.3", "en"),             # unsupported first: the next acceptable one
    ("fr-FR,de", "ko"),                   # nothing supported: the default
    ("*", "ko"),
    ("*;q=0.9,en;q=0.1", "en"),           # RFC 4647 lookup skips a wildcard followed by other ranges
    ("ko;q=0,*", "en"),                   # q=0: not acceptable
    ("EN-us", "en"),                      # tags are case-insensitive
])
def test_accept_language(client: Any, header: str, lang: str) -> None:
    assert title(client, {"Accept-Language": header}) == TITLE.get(lang)


def test_no_header_is_korean(client: Any) -> None:
    assert title(client, {}) == TITLE.ko


@pytest.mark.parametrize(("header", "query", "lang"), [
    ("ko-KR,en,*", "&lang=en", "en"),
    ("en-US,*", "&lang=ko", "ko"),
    ("en;q=0.5,ko;q=0.9", "&lang=en", "en"),
])
def test_lang_parameter_wins(client: Any, header: str, query: str, lang: str) -> None:
    assert title(client, {"Accept-Language": header}, query) == TITLE.get(lang)


def test_html_page_follows_the_header(client: Any) -> None:
    page = client.get("/collections/bike_stations?f=html", headers={"Accept-Language": "ko-KR,en,*"})
    assert TITLE.ko in page.get_data(as_text=True)
    page = client.get("/collections/bike_stations?f=html", headers={"Accept-Language": "en-US,*"})
    assert TITLE.en in page.get_data(as_text=True)
