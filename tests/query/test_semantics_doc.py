"""docs/semantics.md cannot drift: every query field, math and operator is documented."""

from __future__ import annotations

import typing
from pathlib import Path

from pydantic import BaseModel

from eventlens.query import model

DOCS = Path(__file__).resolve().parents[2] / "docs"
DOC = (DOCS / "semantics.md").read_text()
# PostHog's presentation and neutral-only fields are listed in the API doc's fields table, which
# semantics.md points to; every other field is explained in semantics.md itself.
API_FIELDS = (
    (DOCS / "api.md").read_text().split("\n## PostHog's query fields", 1)[1].split("\n## ")[0]
)


def _models() -> list[type[BaseModel]]:
    return [
        obj
        for obj in vars(model).values()
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == model.__name__
    ]


def _documented(field: str, doc: str) -> bool:
    return f"`{field}`" in doc or f'"{field}"' in doc


def test_every_query_field_is_documented() -> None:
    fields = {name for m in _models() for name in m.model_fields if name != "kind"}
    missing = sorted(f for f in fields if not (_documented(f, DOC) or _documented(f, API_FIELDS)))
    assert not missing, (
        f"fields missing from docs/semantics.md and api.md's fields table: {missing}"
    )


def test_every_math_and_operator_is_documented() -> None:
    names = [*typing.get_args(model.MathType), *typing.get_args(model.Operator)]
    missing = [n for n in names if f"`{n}`" not in DOC]
    assert not missing, f"missing from docs/semantics.md: {missing}"


def test_every_query_kind_has_a_section() -> None:
    missing = [k for k in model.QUERY_KINDS if f'"kind": "{k}"' not in DOC]
    assert not missing
