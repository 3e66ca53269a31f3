"""OGC exception JSON for every error the Flask app meets: never a stack trace."""

from __future__ import annotations

import logging

import psycopg2
from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from core.errors import InvalidParameterValue, NotFound, OGCError, ServiceUnavailable

LOGGER = logging.getLogger(__name__)


def error_response(err: OGCError) -> Response:
    """Render an OGCError as application/json."""
    return Response(json.dumps(err.body(), ensure_ascii=False), status=err.http_status,
                    mimetype="application/json", headers=err.headers)


def register_error_handlers(app: Flask) -> None:
    """Map every exception to OGC exception JSON."""

    @app.errorhandler(OGCError)
    def _ogc(err: OGCError) -> Response:
        return error_response(err)

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException) -> Response:
        status = err.code or 500
        codes = {404: "NotFound", 405: "MethodNotAllowed", 400: "InvalidParameterValue", 406: "NotAcceptable",
                 413: "PayloadTooLarge", 414: "URITooLong"}
        ogc = OGCError(err.description or err.name)
        ogc.http_status = status
        ogc.code = codes.get(status, "NoApplicableCode")
        resp = error_response(ogc)
        if status == 405 and hasattr(err, "valid_methods") and err.valid_methods:
            resp.headers["Allow"] = ", ".join(err.valid_methods)
        return resp

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        if isinstance(err, psycopg2.errors.QueryCanceled):
            LOGGER.warning("query cancelled by statement timeout: %s", err)
            return error_response(ServiceUnavailable("the query took too long and was cancelled; narrow it "
                                                     "(smaller bbox, lower limit, simpler filter)"))
        if isinstance(err, psycopg2.errors.UndefinedTable):  # a result layer dropped since the registry read it
            from server import services

            services.current().registry.mark_stale()
            return error_response(NotFound("this collection no longer exists; see /collections"))
        if isinstance(err, psycopg2.DataError):  # SQLSTATE class 22: out of range, division by zero, bad value
            LOGGER.info("request value refused by the database: %s", err)
            return error_response(InvalidParameterValue(
                "a value in the request cannot be evaluated (out of range, division by zero or malformed): "
                + str(err).splitlines()[0]))
        if isinstance(err, psycopg2.OperationalError):
            LOGGER.error("database unavailable: %s", err)
            return error_response(ServiceUnavailable("database unavailable", headers={"Retry-After": "5"}))
        LOGGER.exception("unhandled error")
        return error_response(OGCError())
