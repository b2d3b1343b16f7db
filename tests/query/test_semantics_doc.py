"""docs/semantics.md cannot drift: every query field, math and operator is documented."""

from __future__ import annotations

import typing
from pathlib import Path

from pydantic import BaseModel

from eventlens.query import model

DOC = (Path(__file__).resolve().parents[2] / "docs" / "semantics.md").read_text()


def _models() -> list[type[BaseModel]]:
    return [
        obj
        for obj in vars(model).values()
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == model.__name__
    ]


def test_every_query_field_is_documented() -> None:
    fields = {name for m in _models() for name in m.model_fields if name != "kind"}
    missing = sorted(f for f in fields if f"`{f}`" not in DOC and f'"{f}"' not in DOC)
    assert not missing, f"fields missing from docs/semantics.md: {missing}"


def test_every_math_and_operator_is_documented() -> None:
    names = [*typing.get_args(model.MathType), *typing.get_args(model.Operator)]
    missing = [n for n in names if f"`{n}`" not in DOC]
    assert not missing, f"missing from docs/semantics.md: {missing}"


def test_every_query_kind_has_a_section() -> None:
    missing = [k for k in model.QUERY_KINDS if f'"kind": "{k}"' not in DOC]
    assert not missing
