"""OGC exception hierarchy and its JSON rendering: never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

LOGGER = logging.getLogger(__name__)

EXCEPTIONS_NS = "http://www.opengis.net/def/exceptions/ogcapi-common-1/1.0"


class OGCError(Exception):
    """An error that becomes an OGC exception document."""

    http_status: int = 500
    code: str = "NoApplicableCode"
    default_msg: str = "internal server error"

    def __init__(self, description: str | None = None, *, type_uri: str | None = None) -> None:
        super().__init__(description or self.default_msg)
        self.description = description or self.default_msg
        self.type_uri = type_uri

    def body(self) -> dict[str, Any]:
        """Exception JSON: code/description (OGC) plus type/title/status (RFC 7807)."""
        return {
            "code": self.code,
            "type": self.type_uri or f"{EXCEPTIONS_NS}/{self.code}",
            "title": self.code,
            "status": self.http_status,
            "description": self.description,
            "detail": self.description,
        }


class InvalidParameterValue(OGCError):
    """A query parameter or input value is malformed."""

    http_status = 400
    code = "InvalidParameterValue"


class MissingParameterValue(OGCError):
    """A required parameter is absent."""

    http_status = 400
    code = "MissingParameterValue"


class NotFound(OGCError):
    """Unknown collection, feature or resource."""

    http_status = 404
    code = "NotFound"


class NotAcceptable(OGCError):
    """No representation for the requested media type."""

    http_status = 406
    code = "NotAcceptable"


class ServiceUnavailable(OGCError):
    """The database timed out or is unreachable."""

    http_status = 503
    code = "ServiceUnavailable"


def error_response(err: OGCError) -> Response:
    """Render an OGCError as application/json."""
    return Response(json.dumps(err.body(), ensure_ascii=False), status=err.http_status,
                    mimetype="application/json")


def register_error_handlers(app: Flask) -> None:
    """Map every exception to OGC exception JSON."""

    @app.errorhandler(OGCError)
    def _ogc(err: OGCError) -> Response:
        return error_response(err)

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException) -> Response:
        status = err.code or 500
        codes = {404: "NotFound", 405: "MethodNotAllowed", 400: "InvalidParameterValue", 406: "NotAcceptable"}
        ogc = OGCError(err.description or err.name)
        ogc.http_status = status
        ogc.code = codes.get(status, "NoApplicableCode")
        resp = error_response(ogc)
        if status == 405 and hasattr(err, "valid_methods") and err.valid_methods:
            resp.headers["Allow"] = ", ".join(err.valid_methods)
        return resp

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        import psycopg2

        if isinstance(err, psycopg2.errors.QueryCanceled):
            LOGGER.warning("query cancelled by statement timeout: %s", err)
            return error_response(ServiceUnavailable("the query took too long and was cancelled; narrow it "
                                                     "(smaller bbox, lower limit, simpler filter)"))
        if isinstance(err, psycopg2.OperationalError):
            LOGGER.error("database unavailable: %s", err)
            return error_response(ServiceUnavailable("database unavailable"))
        LOGGER.exception("unhandled error")
        return error_response(OGCError())
