"""Trends formulas (`trendsFilter.formula`, e.g. `A/B*100`): series letters, numbers, + - * / ( ).

Parsed with Python's `ast` and evaluated by walking a whitelist of node types, never `eval`.
Division by zero gives 0 (insights.md "Trends").
"""

from __future__ import annotations

import ast
import string

from eventlens.errors import InvalidQuery

_FIELD = "trendsFilter.formula"


def _parse(formula: str) -> ast.expr:
    try:
        tree = ast.parse(formula.strip(), mode="eval")
    except SyntaxError:
        raise InvalidQuery(f"{_FIELD}: cannot parse {formula!r}", field=_FIELD) from None
    return tree.body


def _letters(node: ast.expr, n_series: int) -> None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
        _letters(node.left, n_series)
        _letters(node.right, n_series)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        _letters(node.operand, n_series)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        pass
    elif isinstance(node, ast.Name):
        name = node.id.upper()
        if len(name) != 1 or name not in string.ascii_uppercase[:n_series]:
            last = string.ascii_uppercase[n_series - 1]
            raise InvalidQuery(
                f"{_FIELD}: {node.id!r} does not name a series (A..{last})",
                field=_FIELD,
            )
    else:
        raise InvalidQuery(
            f"{_FIELD}: only series letters, numbers, + - * / and parentheses are allowed",
            field=_FIELD,
        )


def check_formula(formula: str, n_series: int) -> None:
    """InvalidQuery unless `formula` is a valid expression over series A.. (n_series letters)."""
    _letters(_parse(formula), n_series)


def evaluate(formula: str, values: dict[str, float]) -> float:
    """The formula's value for one bucket; `values` maps letters to the series values."""
    return _eval(_parse(formula), values)


def _eval(node: ast.expr, values: dict[str, float]) -> float:
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int | float)
        return float(node.value)
    if isinstance(node, ast.Name):
        return float(values[node.id.upper()])
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, values)
        return -v if isinstance(node.op, ast.USub) else v
    assert isinstance(node, ast.BinOp)
    left, right = _eval(node.left, values), _eval(node.right, values)
    if isinstance(node.op, ast.Add):
        return left + right
    if isinstance(node.op, ast.Sub):
        return left - right
    if isinstance(node.op, ast.Mult):
        return left * right
    return 0.0 if right == 0 else left / right
