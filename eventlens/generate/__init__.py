"""Seeded, vectorised generator of realistic product events (benchmark.md, Data).

    generate(n_events, seed=42, end=None, days=90) -> Iterator[pa.RecordBatch]
    write_file(path, n_events, seed=42, ...) -> int

Same arguments, same bytes. See `shape` for the story the data tells.
"""

from __future__ import annotations

import re
from decimal import Decimal

from eventlens.errors import InvalidInput
from eventlens.generate.core import DEFAULT_CHUNK_EVENTS, generate
from eventlens.generate.encode import GENERATED_SCHEMA
from eventlens.generate.writer import write_file

# The public surface: these names, and the modules `shape` (the data's story), `writer` and
# `saas` (a second generator with another shape).
__all__ = [
    "DEFAULT_CHUNK_EVENTS",
    "GENERATED_SCHEMA",
    "generate",
    "parse_count",
    "saas",
    "shape",
    "write_file",
    "writer",
]

_COUNT = re.compile(r"(\d+(?:\.\d+)?)([kmb]?)")
_SUFFIXES = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}


def parse_count(text: str) -> int:
    """'10000', '10k', '1m', '2.5m', '100M', '1_000' -> an int >= 0. Raises InvalidInput."""
    match = _COUNT.fullmatch(text.strip().lower().replace("_", ""))
    value = Decimal(match.group(1)) * _SUFFIXES[match.group(2)] if match else Decimal("0.5")
    if value != value.to_integral_value():
        raise InvalidInput(
            f"cannot read {text!r} as an event count (examples: 10000, 10k, 1m, 100m)",
            field="events",
        )
    return int(value)
