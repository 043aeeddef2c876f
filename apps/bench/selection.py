"""``fedleak bench --only KEY=VALUE``: run part of a suite, e.g. one row of its report.

A filter keeps the cells whose field ``KEY`` (``attack``, ``defense``, ``batch_size``,
``per_class``, a capture's ``local_steps``, a trained victim's ``victim_rounds``, ...: the fields
a report groups by) equals ``VALUE``; several filters must all hold. Cells keep their ids, so a
selection's results land in the same store as the whole suite's, and a later run of the whole
suite skips them.
"""

from __future__ import annotations

from collections.abc import Sequence

from apps.bench.kinds.base import KindCell
from apps.bench.report_spec import cell_fields
from apps.bench.suite import Cell
from fedsim.errors import UserInputError

Value = str | int | float | bool | list | None
"""A field of a cell that a filter can name (a nested table, by its fields: ``victim_rounds``)."""


def select_cells(cells: Sequence[Cell | KindCell], only: Sequence[str]) -> list[Cell | KindCell]:
    """The cells every ``KEY=VALUE`` filter of ``only`` keeps, in order; a filter naming no
    field, or a value no cell has, raises one line with what would be valid."""
    selected = list(cells)
    for text in only:
        key, separator, wanted = text.partition("=")
        key, wanted = key.strip(), wanted.strip()
        fields = [_fields(cell) for cell in selected]
        keys = sorted({k for values in fields for k in values})
        if not separator or not key:
            raise UserInputError(
                f"invalid --only {text!r}; valid: KEY=VALUE, KEY one of {', '.join(keys)}"
            )
        if key not in keys:
            raise UserInputError(f"invalid --only key {key!r}; valid: {', '.join(keys)}")
        kept = [
            cell
            for cell, values in zip(selected, fields, strict=True)
            if key in values and _matches(values[key], wanted)
        ]
        if not kept:
            present = sorted({_spelled(values[key]) for values in fields if key in values})
            raise UserInputError(f"no cell left with {key}={wanted!r}; valid: {', '.join(present)}")
        selected = kept
    return selected


def _fields(cell: Cell | KindCell) -> dict[str, Value]:
    """The cell's fields a filter can compare, unset ones too; a nested table is compared by
    its fields (``victim_rounds=20``), so ``victim=none`` keeps only the cells with none."""
    fields = cell_fields(cell.model_dump(mode="json"))
    return {k: v for k, v in fields.items() if not isinstance(v, dict)}


def _spelled(value: Value) -> str:
    """How a filter writes ``value``: none, true/false, 5,6,7 for a list, else str()."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(_spelled(v) for v in value)
    return str(value)


def _matches(value: Value, wanted: str) -> bool:
    """Whether the filter's text names ``value`` (numbers compare by value: 1 = 1.0)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(wanted) == float(value)
        except ValueError:
            return False
    spelled = _spelled(value)
    if value is None or isinstance(value, bool):
        return spelled == wanted.lower()
    return spelled == wanted
