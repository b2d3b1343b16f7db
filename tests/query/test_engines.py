"""The engine registry: the reference engine is always there, others can be added."""

from __future__ import annotations

from typing import Any

import pytest

from eventlens.errors import InvalidQuery
from eventlens.query import Engine, engine_names, get_engine, register_engine


class EchoEngine:
    name = "test-echo"

    def run(self, query: Any, snapshot: Any) -> Any:
        return query.kind


def test_reference_is_registered_even_after_other_engines() -> None:
    register_engine(EchoEngine())
    assert {"reference", "test-echo"} <= set(engine_names())
    assert isinstance(get_engine("reference"), Engine)
    assert get_engine("test-echo").name == "test-echo"


def test_unknown_engine_is_invalid_and_names_the_known_ones() -> None:
    with pytest.raises(InvalidQuery, match="reference") as info:
        get_engine("nope")
    assert info.value.field == "engine"
