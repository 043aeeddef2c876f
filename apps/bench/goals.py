"""Goal expressions of a suite's report: comparisons of one row's medians, read as a tiny
language and evaluated by walking its tree (never ``eval``).

An expression compares sums of terms with ``>=``, ``<=``, ``>`` or ``<`` and joins comparisons
with ``and`` / ``or`` (parentheses group). A term is a number, a number times a term
(``0.5 * ap50[random]``), ``max(...)`` / ``min(...)`` of terms, or a median: ``metric[column]``
(the column's name bare or quoted, ``psnr['ig-fast']``) in a report with columns, a bare
``metric`` in one without::

    psnr[dia] >= psnr['dia-no-masks'] + 10 and (psnr[wiig] - psnr[dia] <= 3 or psnr[dia] > 40)
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass

Lookup = Callable[[str, str | None], float | None]
"""(metric, column or None) → the row's median, None where the row has none."""

_COMPARE = {
    ast.GtE: float.__ge__,
    ast.LtE: float.__le__,
    ast.Gt: float.__gt__,
    ast.Lt: float.__lt__,
}
_FUNCTIONS = {"max": max, "min": min}


@dataclass(frozen=True)
class Median:
    """A median the expression reads: a metric, of one column or (None) of the whole row."""

    metric: str
    column: str | None


def parse_goal(text: str, metrics: set[str], with_columns: bool) -> list[Median]:
    """Check an expression and return the medians it reads; a bad one raises ValueError
    naming the bad part and what is valid."""
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as error:
        raise ValueError(f"goal {text!r} is not an expression: {error.msg}") from None
    if not isinstance(tree, ast.Compare | ast.BoolOp):
        raise ValueError(f"goal {text!r} must compare (>=, <=, >, <), joined by and / or")
    found: list[Median] = []
    _check(tree, text, metrics, with_columns, found, boolean=True)
    return found


def evaluate_goal(text: str, lookup: Lookup) -> bool | None:
    """The goal's verdict on one row; None where a median it reads is missing."""
    try:
        return _value(ast.parse(text, mode="eval").body, lookup)
    except _Missing:
        return None


class _Missing(Exception):
    """A median the goal reads is missing from the row."""


def _check(
    node: ast.AST,
    text: str,
    metrics: set[str],
    with_columns: bool,
    found: list[Median],
    *,
    boolean: bool,
) -> None:
    def check(child: ast.AST, as_boolean: bool) -> None:
        _check(child, text, metrics, with_columns, found, boolean=as_boolean)

    if boolean and isinstance(node, ast.BoolOp):
        for value in node.values:
            check(value, True)
    elif boolean and isinstance(node, ast.Compare):
        bad = [op for op in node.ops if type(op) not in _COMPARE]
        if bad:
            raise ValueError(f"goal {text!r}: comparisons are >=, <=, >, <")
        for operand in (node.left, *node.comparators):
            check(operand, False)
    elif not boolean and isinstance(node, ast.BinOp) and type(node.op) in (ast.Add, ast.Sub):
        check(node.left, False)
        check(node.right, False)
    elif not boolean and _is_scaling(node):
        check(node.right, False)
    elif not boolean and isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        check(node.operand, False)
    elif not boolean and isinstance(node, ast.Constant) and _is_number(node.value):
        return
    elif not boolean and isinstance(node, ast.Call) and _function(node) is not None:
        if node.keywords or not node.args:
            raise ValueError(f"goal {text!r}: max and min take terms, no keywords")
        for argument in node.args:
            check(argument, False)
    elif not boolean and isinstance(node, ast.Subscript | ast.Name):
        median = _median(node, text)
        if median.metric not in metrics:
            raise ValueError(
                f"goal {text!r}: unknown metric {median.metric!r}; valid: "
                f"{', '.join(sorted(metrics))}"
            )
        if (median.column is not None) != with_columns:
            form = "metric[column]" if with_columns else "a bare metric (no columns)"
            raise ValueError(f"goal {text!r}: {ast.unparse(node)!r} should be {form}")
        found.append(median)
    else:
        raise ValueError(
            f"goal {text!r}: {ast.unparse(node)!r} is not allowed; use numbers, metric[column], "
            "+, -, number * term, max(), min(), comparisons, and, or"
        )


def _median(node: ast.AST, text: str) -> Median:
    if isinstance(node, ast.Name):
        return Median(node.id, None)
    assert isinstance(node, ast.Subscript)
    column = node.slice
    if not isinstance(node.value, ast.Name):
        raise ValueError(f"goal {text!r}: {ast.unparse(node)!r} should be metric[column]")
    if isinstance(column, ast.Name):
        return Median(node.value.id, column.id)
    if isinstance(column, ast.Constant) and isinstance(column.value, str | int | float):
        return Median(node.value.id, str(column.value))
    raise ValueError(f"goal {text!r}: column {ast.unparse(column)!r} should be a name")


def _value(node: ast.AST, lookup: Lookup) -> float | bool:
    if isinstance(node, ast.BoolOp):
        values = [bool(_value(v, lookup)) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare):
        operands = [float(_value(n, lookup)) for n in (node.left, *node.comparators)]
        pairs = zip(node.ops, operands, operands[1:], strict=False)
        return all(_COMPARE[type(op)](left, right) for op, left, right in pairs)
    if isinstance(node, ast.BinOp):
        left, right = float(_value(node.left, lookup)), float(_value(node.right, lookup))
        if isinstance(node.op, ast.Mult):
            return left * right
        return left + right if isinstance(node.op, ast.Add) else left - right
    if isinstance(node, ast.UnaryOp):
        return -float(_value(node.operand, lookup))
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Call):
        function = _function(node)
        assert function is not None
        return function(float(_value(a, lookup)) for a in node.args)
    median = _median(node, "")
    value = lookup(median.metric, median.column)
    if value is None or math.isnan(value):
        raise _Missing
    return value


def _function(node: ast.Call) -> Callable | None:
    return _FUNCTIONS.get(node.func.id) if isinstance(node.func, ast.Name) else None


def _is_scaling(node: ast.AST) -> bool:
    """``number * term``: a term scaled by a constant (``0.5 * ap50[random]``)."""
    return (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Mult)
        and isinstance(node.left, ast.Constant)
        and _is_number(node.left.value)
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
