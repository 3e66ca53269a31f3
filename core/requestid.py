"""The id of the request being handled (set by the server per request), for tracing queries to requests."""

from __future__ import annotations

from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("sejong_request_id", default=None)
