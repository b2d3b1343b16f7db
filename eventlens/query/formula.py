"""Trends formulas (`trendsFilter.formula`, e.g. `A/B*100`): series letters, numbers, + - * / ( ).

Parsed with Python's `ast` and evaluated by walking a whitelist of node types, never `eval`.
Division by zero gives 0, and so does any other result that is not a finite number (an overflow
such as `A*1e300*1e300`): insights.md "Trends".

Formulas are bounded before they are parsed (length, terms, nesting, literal size), so neither
the parser nor the evaluator can recurse deeply or overflow converting a literal.
"""

from __future__ import annotations

import ast
import math
import string
from functools import lru_cache

from eventlens.errors import InvalidQuery

_FIELD = "trendsFilter.formula"
MAX_LENGTH = 500  # characters
MAX_TERMS = 100  # series letters and numbers
MAX_NESTING = 20  # parentheses inside each other
MAX_SIGNS = 3  # operators in a row (`A*--B`); a long run of unary minus nests as deep
MAX_LITERAL = 20  # characters of one number
_OPERATORS = set("+-*/")


def _fail(message: str) -> InvalidQuery:
    return InvalidQuery(f"{_FIELD}: {message}", field=_FIELD)


def _check_shape(formula: str) -> None:
    """Bounds that must hold before `ast.parse` (which recurses on nesting)."""
    if len(formula) > MAX_LENGTH:
        raise _fail(f"a formula is at most {MAX_LENGTH} characters, got {len(formula)}")
    depth = signs = literal = 0
    for ch in formula:
        if ch.isspace():
            continue
        if ch == "(":
            depth += 1
            if depth > MAX_NESTING:
                raise _fail(f"parentheses nest at most {MAX_NESTING} levels deep")
        elif ch == ")":
            depth -= 1
        if ch in _OPERATORS:
            signs += 1
            if signs > MAX_SIGNS:
                raise _fail(f"at most {MAX_SIGNS} operators in a row")
        elif ch != "(":
            signs = 0
        if ch.isdigit() or ch == "." or (literal and ch in "eE"):
            literal += 1
            if literal > MAX_LITERAL:
                raise _fail(f"a number is at most {MAX_LITERAL} characters")
        else:
            literal = 0


@lru_cache(maxsize=256)
def _parse(formula: str) -> ast.expr:
    _check_shape(formula)
    try:
        tree = ast.parse(formula.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise _fail(f"cannot parse {formula!r}") from None
    return tree.body


def _letters(root: ast.expr, n_series: int) -> None:
    terms = 0
    todo = [root]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.BinOp) and isinstance(
            node.op, ast.Add | ast.Sub | ast.Mult | ast.Div
        ):
            todo += [node.left, node.right]
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            todo.append(node.operand)
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            terms += 1
            assert isinstance(node.value, int | float)
            if not math.isfinite(float(node.value)):
                raise _fail("every number must be finite (one is too large for a float)")
        elif isinstance(node, ast.Name):
            terms += 1
            name = node.id.upper()
            if len(name) != 1 or name not in string.ascii_uppercase[:n_series]:
                last = string.ascii_uppercase[n_series - 1]
                raise _fail(f"{node.id!r} does not name a series (A..{last})")
        else:
            raise _fail("only series letters, numbers, + - * / and parentheses are allowed")
        if terms > MAX_TERMS:
            raise _fail(f"a formula has at most {MAX_TERMS} terms (letters and numbers)")


def check_formula(formula: str, n_series: int) -> None:
    """InvalidQuery unless `formula` is a valid expression over series A.. (n_series letters)
    within the size limits: MAX_LENGTH characters, MAX_TERMS terms, MAX_NESTING parentheses,
    MAX_SIGNS operators in a row, numbers of at most MAX_LITERAL characters that are finite."""
    _letters(_parse(formula), n_series)


def evaluate(formula: str, values: dict[str, float]) -> float:
    """The formula's value for one bucket; `values` maps letters to the series values.
    Division by zero, overflow or any other non-finite result gives 0."""
    result = _eval(_parse(formula), values)
    return result if math.isfinite(result) else 0.0


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
