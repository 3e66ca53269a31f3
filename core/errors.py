"""OGC exception classes: what went wrong, the HTTP status, and the exception document (no HTTP framework here)."""

from __future__ import annotations

import logging
from typing import Any

LOGGER = logging.getLogger(__name__)

EXCEPTIONS_NS = "http://www.opengis.net/def/exceptions/ogcapi-common-1/1.0"


class OGCError(Exception):
    """An error that becomes an OGC exception document."""

    http_status: int = 500
    code: str = "NoApplicableCode"
    default_msg: str = "internal server error"

    def __init__(self, description: str | None = None, *, type_uri: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(description or self.default_msg)
        self.description = description or self.default_msg
        self.type_uri = type_uri
        self.headers = dict(headers or {})

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


class Unauthorized(OGCError):
    """401: missing or invalid credentials (the WWW-Authenticate header says which)."""

    http_status = 401
    code = "Unauthorized"


class Forbidden(OGCError):
    """403: the caller is known and may not do this (no editing role, a quota of zero jobs)."""

    http_status = 403
    code = "Forbidden"


class Conflict(OGCError):
    """409: the resource exists already (a feature with this id)."""

    http_status = 409
    code = "Conflict"


class PreconditionFailed(OGCError):
    """412: the feature changed since the ETag in If-Match was read."""

    http_status = 412
    code = "PreconditionFailed"


class UnsupportedMediaType(OGCError):
    """415: the body is not in a media type the route takes."""

    http_status = 415
    code = "UnsupportedMediaType"


class PreconditionRequired(OGCError):
    """428: replace, update and delete need If-Match with the feature's ETag."""

    http_status = 428
    code = "PreconditionRequired"


class TooManyRequests(OGCError):
    """A bounded queue or concurrency limit is full: retry later."""

    http_status = 429
    code = "TooManyRequests"

    def __init__(self, description: str, retry_after_s: int = 5) -> None:
        super().__init__(description, headers={"Retry-After": str(retry_after_s)})


class ServiceUnavailable(OGCError):
    """The database timed out or is unreachable."""

    http_status = 503
    code = "ServiceUnavailable"


class Busy(ServiceUnavailable):
    """Every pooled database connection is in use: retry shortly."""

    def __init__(self, description: str = "the server is busy (all database connections in use); retry shortly",
                 retry_after_s: int = 2) -> None:
        super().__init__(description, headers={"Retry-After": str(retry_after_s)})
