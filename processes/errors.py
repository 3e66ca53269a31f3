"""OGC API - Processes exception types (rendered by server.errors)."""

from __future__ import annotations

from core.errors import InvalidParameterValue, OGCError

PROCESSES_NS = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0"


class NoSuchProcess(OGCError):
    """Unknown process id."""

    http_status = 404
    code = "NoSuchProcess"

    def __init__(self, description: str | None = None) -> None:
        super().__init__(description, type_uri=f"{PROCESSES_NS}/no-such-process")


class NoSuchJob(OGCError):
    """Unknown job id."""

    http_status = 404
    code = "NoSuchJob"

    def __init__(self, description: str | None = None) -> None:
        super().__init__(description, type_uri=f"{PROCESSES_NS}/no-such-job")


class ResultNotReady(OGCError):
    """The job has not finished yet."""

    http_status = 404
    code = "ResultNotReady"

    def __init__(self, description: str | None = None) -> None:
        super().__init__(description, type_uri=f"{PROCESSES_NS}/result-not-ready")


class JobFailed(OGCError):
    """Results of a failed job: the failure, with its original status."""

    code = "JobFailed"

    def __init__(self, description: str, status: int = 500) -> None:
        super().__init__(description, type_uri=f"{PROCESSES_NS}/job-results-failed")
        self.http_status = status


class JobDismissed(Exception):
    """Raised inside a running job once it was dismissed (cooperative stop)."""


class InputError(InvalidParameterValue):
    """A process input is invalid: the message says what to fix."""
