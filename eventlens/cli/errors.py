"""The one place that maps the error tree (`eventlens.errors`) to CLI exit codes.

Every command runs under `ErrorMappingGroup` (the root `eventlens` group), so an EventLensError
raised anywhere in a command ends as one line on stderr and the exit code of its class; a
command that wants to print before exiting calls `fail`, which uses the same table. The codes
are documented in docs/operations.md ("CLI exit codes"); keep the two in step.
"""

from __future__ import annotations

import traceback
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from eventlens import errors

err_console = Console(stderr=True)

OK = 0
NO = 1  # the command ran and its answer is "no": shadow not ready, a mismatch, unverified bench
INVALID_INPUT = 2  # also Click's own usage errors (unknown option, bad value)
NOT_FOUND = 3
AUTHENTICATION = 4
PERMISSION_DENIED = 5
UNAVAILABLE = 6  # port in use, data directory held by a server, server unreachable, 429/503
TIMEOUT = 7
FAILED = 8  # a query sub-task failed twice, or any other EventLensError
DATA_FORMAT = 9  # the data directory's format is newer (or older: migrate) than this release
INTERNAL = 70  # not an EventLensError: a bug (the traceback is printed); sysexits' EX_SOFTWARE
INTERRUPTED = 130  # Ctrl-C, as the shell reports a SIGINT

# Order matters: the first matching class wins, so subclasses come before their bases.
_EXIT: tuple[tuple[type[errors.EventLensError], int], ...] = (
    (errors.InvalidInput, INVALID_INPUT),
    (errors.PayloadTooLarge, INVALID_INPUT),
    (errors.MethodNotAllowed, INVALID_INPUT),
    (errors.NotFound, NOT_FOUND),
    (errors.AuthenticationError, AUTHENTICATION),
    (errors.PermissionDenied, PERMISSION_DENIED),
    (errors.Unavailable, UNAVAILABLE),
    (errors.RateLimited, UNAVAILABLE),
    (errors.QueryTimeout, TIMEOUT),
    (errors.ExecutionError, FAILED),
    (errors.IncompatibleDataFormat, DATA_FORMAT),
    (errors.InternalError, INTERNAL),  # a server's 500 seen through `query --url`: a bug there
)


def exit_code(exc: errors.EventLensError) -> int:
    """The documented exit code for `exc`'s class."""
    for cls, code in _EXIT:
        if isinstance(exc, cls):
            return code
    return FAILED


def describe(exc: errors.EventLensError) -> str:
    """The user-facing line: the message, and the field when the message does not name it."""
    if exc.field and exc.field not in exc.message:
        return f"{exc.message} (field: {exc.field})"
    return exc.message


def fail(exc: errors.EventLensError | str, code: int | None = None) -> NoReturn:
    """Print a user error (no traceback) and exit: with `exc`'s mapped code, or for a plain
    message with `code` (default INVALID_INPUT, a usage error)."""
    if isinstance(exc, errors.EventLensError):
        msg, status = describe(exc), exit_code(exc) if code is None else code
    else:
        msg, status = exc, INVALID_INPUT if code is None else code
    err_console.print(f"[red]error:[/red] {escape(msg)}", highlight=False, soft_wrap=True)
    raise typer.Exit(status)


class ErrorMappingGroup(TyperGroup):
    """The root group: maps what its commands raise to exit codes, in one place."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except errors.EventLensError as exc:
            fail(exc)
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(INTERRUPTED) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # Click's own ways out: usage errors (2), --help, explicit exits
        except Exception as exc:
            err_console.print(traceback.format_exc(), markup=False, highlight=False, soft_wrap=True)
            err_console.print(
                f"[red]internal error:[/red] {escape(f'{type(exc).__name__}: {exc}')} (this is a "
                "bug; the traceback above says where)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(INTERNAL) from None
