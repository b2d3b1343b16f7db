"""The one way EventLens compiles a user's regular expression (RE2, bounded).

RE2 matches in linear time, but linear in the compiled program's size: `(.*a){1000}` compiles
to 11,000 instructions, overflows the DFA's memory and falls back to the slow NFA, so one filter
could burn seconds of CPU per query. Patterns are therefore bounded in length and in program size
when the query is validated, and RE2 is told never to write its own (non-JSON) error lines to
stderr: every error reaches the user as an InvalidQuery instead.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

from eventlens.errors import InvalidQuery

MAX_PATTERN_LENGTH = 1000
MAX_PROGRAM_SIZE = 3000
# RE2's budget for the compiled program and its DFA caches (its default, stated explicitly).
MAX_MEM = 8 << 20


def _options() -> Any:
    options = re2.Options()
    options.max_mem = MAX_MEM
    options.log_errors = False
    return options


_OPTIONS = _options()


@lru_cache(maxsize=256)
def _compile(pattern: str) -> Any:
    return re2.compile(pattern, options=_OPTIONS)


def compile_pattern(pattern: str, field: str = "value") -> Any:
    """The compiled RE2 pattern (cached). InvalidQuery naming `field` if it is longer than
    MAX_PATTERN_LENGTH characters, does not parse, or compiles to more than MAX_PROGRAM_SIZE
    instructions."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidQuery(
            f"{field}: a regular expression is at most {MAX_PATTERN_LENGTH} characters, "
            f"got {len(pattern)}",
            field=field,
        )
    try:
        compiled = _compile(pattern)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise InvalidQuery(
            f"{field}: invalid RE2 regular expression: {reason}", field=field
        ) from None
    size = int(compiled.programsize)
    if size > MAX_PROGRAM_SIZE:
        raise InvalidQuery(
            f"{field}: regular expression too costly: it compiles to a program of {size} "
            f"instructions, the limit is {MAX_PROGRAM_SIZE} (avoid large repetition counts)",
            field=field,
        )
    return compiled
