"""The one error hierarchy of EventLens.

Every error a user can cause or observe is one of these; `eventlens.web.errors` is the one
place that maps them to HTTP statuses (and the CLI to exit codes). Raise the most specific
class; the message must say what was wrong and where (field, index, file), because it is shown
to the user verbatim.

    EventLensError
    ├── InvalidInput                 400  malformed body, bad field, unsupported option
    │   ├── InvalidEvent                  one event of a batch (dead-lettered, batch still 200)
    │   └── InvalidQuery                  an insight query (names the field)
    ├── PayloadTooLarge              413  body/event over a size limit (also gzip bombs)
    ├── AuthenticationError          401  missing/unknown token or API key
    ├── PermissionDenied             403  valid key, but not for this project
    ├── NotFound                     404  unknown project, path, record
    ├── MethodNotAllowed             405
    ├── RateLimited                  429  carries retry_after seconds
    ├── QueryTimeout                 504  a query passed its deadline (sub-tasks cancelled)
    ├── Unavailable                  503  could not make events durable / shutting down
    ├── ExecutionError               500  a query sub-task failed twice (names the partition)
    ├── InternalError                500  any other exception: a bug (answer carries error_id)
    └── IncompatibleDataFormat            the data directory's format is newer or older than
                                          this release's (a server refuses to start)

The two 500s answer only their type, a fixed detail and an `error_id`; their message (which may
hold server paths or a library's words) goes to the log line with the traceback, under that id.
"""

from __future__ import annotations

from typing import Any


class EventLensError(Exception):
    """Base class. `field` (optional) names the offending input location, e.g. `batch[3].uuid`."""

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": type(self).__name__, "detail": self.message}
        if self.field is not None:
            body["field"] = self.field
        body.update(self.details)
        return body


class InvalidInput(EventLensError):
    pass


class InvalidEvent(InvalidInput):
    pass


class InvalidQuery(InvalidInput):
    pass


class PayloadTooLarge(EventLensError):
    pass


class AuthenticationError(EventLensError):
    pass


class PermissionDenied(EventLensError):
    pass


class NotFound(EventLensError):
    pass


class MethodNotAllowed(EventLensError):
    pass


class RateLimited(EventLensError):
    def __init__(self, message: str, *, retry_after: float = 1.0, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class QueryTimeout(EventLensError):
    pass


class Unavailable(EventLensError):
    pass


class ExecutionError(EventLensError):
    pass


class InternalError(EventLensError):
    """An exception that is not one of ours reached the HTTP layer: a bug. The web layer answers
    it (and ExecutionError) with a fixed detail and an error id that is in the log."""


class IncompatibleDataFormat(EventLensError):
    """The data directory's format is not the one this release reads: newer (roll forward, or
    restore the backup taken before the upgrade) or older (run `eventlens migrate`)."""
