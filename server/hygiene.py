"""Input the database or the WSGI server cannot take, refused as 400 before any view runs; headers made ASCII."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, request
from werkzeug.urls import iri_to_uri

from core.errors import InvalidParameterValue

MAX_JSON_DEPTH = 64
URI_HEADERS = ("Link", "Location", "Content-Location")


def _bad_text(text: str) -> str | None:
    """Why a string cannot be stored or compared in PostgreSQL, or None."""
    if "\x00" in text:
        return "contains a NUL character (0x00)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode)"
    return None


def check_text(text: str, what: str) -> None:
    """400 for a string PostgreSQL cannot take."""
    why = _bad_text(text)
    if why:
        raise InvalidParameterValue(f"{what} {why}; remove it")


def check_json(value: Any, what: str = "the request body", depth: int = 0) -> None:
    """400 for JSON nested deeper than MAX_JSON_DEPTH or holding strings PostgreSQL cannot take."""
    if depth > MAX_JSON_DEPTH:
        raise InvalidParameterValue(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
    if isinstance(value, str):
        check_text(value, f"a string in {what}")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(str(key), f"a member name in {what}")
            check_json(item, what, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json(item, what, depth + 1)


def load_json_body() -> Any:
    """The request's JSON body, checked; None when it is not JSON."""
    raw = request.get_data(cache=True)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except RecursionError:
        raise InvalidParameterValue(f"the request body is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError):
        return None
    check_json(value)
    return value


def install(app: Flask) -> None:
    """Check every request's path and query string; percent-encode non-ASCII in URI headers."""

    @app.before_request
    def _check_request() -> None:
        check_text(request.path, "the path")
        for name, values in request.args.lists():
            check_text(name, "a query parameter name")
            for value in values:
                check_text(value, f"query parameter {name!r}")

    @app.after_request
    def _ascii_headers(resp: Response) -> Response:
        for header in URI_HEADERS:
            value = resp.headers.get(header)
            if value is not None and not value.isascii():
                resp.headers[header] = iri_to_uri(value)
        return resp
