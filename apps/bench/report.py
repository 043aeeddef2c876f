"""The tables and plots of a results store: per suite, the medians of its done, scored cells
grouped as its ``[report]`` table says, with a verdict per row for each declared goal.

``fedleak bench report`` prints them (markdown or JSON) and writes the plots; the viewer's
bench page shows the same :func:`build_report`. PSNR medians count an exact reconstruction
(null PSNR in the store) as +∞, so a median can be ∞; JSON writes it as null, as the store does.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from apps.bench.goals import evaluate_goal
from apps.bench.report_spec import ReportSpec, cell_fields
from fedsim.errors import UserInputError

_OMITTED_DEFAULTS = {"adaptive": False, "per_class": None}
"""Cell fields a cell's canonical JSON leaves out at their default (``Cell.config_json``)."""

REPORT_DIR = "report"
_DIGITS = {"psnr": 1, "random_psnr": 1, "wall_s": 1, "iterations": 0, "gradient_distance": 4}


@dataclass(frozen=True)
class ReportRow:
    """One table row: its key values, done (scored) and failed cells, the images they
    attacked (the most of any column), medians per column and metric, a verdict per goal
    (``met``, ``missed``, ``n/a`` where a median it reads is missing, ``–`` where the goal's
    ``where`` leaves the row out)."""

    keys: dict[str, object]
    cells: int
    failed: int
    images: int
    medians: dict[str, dict[str, float | None]]
    verdicts: dict[str, str]
    intervals: dict[str, dict[str, tuple[float, float] | None]] = field(default_factory=dict)
    """Per column and metric, the median's 95 % bootstrap interval (``[report] intervals``)."""


@dataclass(frozen=True)
class SuiteReport:
    """The table of one suite: its spec, the columns in the order cells name them, the rows,
    and how many done cells wait for ``fedleak bench score``."""

    suite: str
    description: str
    spec: ReportSpec
    columns: tuple[str, ...]
    rows: tuple[ReportRow, ...]
    unscored: int

    def to_json(self) -> dict[str, object]:
        """JSON-ready: infinite medians (exact reconstructions) become null."""
        rows = [
            {
                "keys": row.keys,
                "cells": row.cells,
                "failed": row.failed,
                "images": row.images,
                "medians": {
                    column: {k: _finite(v) for k, v in values.items()}
                    for column, values in row.medians.items()
                },
                "verdicts": row.verdicts,
                "intervals": {
                    column: {
                        k: None if v is None else [_finite(v[0]), _finite(v[1])]
                        for k, v in values.items()
                    }
                    for column, values in row.intervals.items()
                },
            }
            for row in self.rows
        ]
        return {
            "suite": self.suite,
            "description": self.description,
            "rows_by": list(self.spec.rows),
            "columns_by": self.spec.columns or None,
            "columns": list(self.columns),
            "metrics": list(self.spec.metrics),
            "goals": [goal.model_dump() for goal in self.spec.goals],
            "unscored": self.unscored,
            "rows": rows,
        }


def build_report(
    rows: Iterable[Mapping[str, object]], suites: Mapping[str, str]
) -> list[SuiteReport]:
    """The report of a store's rows (``cells`` columns), one table per suite in the order the
    rows name them; ``suites`` maps a suite's name to its recorded JSON (``[report]`` read from
    it), else a built-in suite's ``[report]`` applies, else the default."""
    by_suite: dict[str, list[Mapping[str, object]]] = {}
    for row in rows:
        by_suite.setdefault(str(row.get("suite") or ""), []).append(row)
    reports = []
    for name, members in by_suite.items():
        suite = _suite_of(name, suites.get(name))
        spec = _spec_of(suite)
        order = _axis_order(suite.get("grid"))
        reports.append(_suite_report(name, str(suite.get("description", "")), spec, members, order))
    return reports


def load_report(out_dir: Path) -> list[SuiteReport]:
    """The report of the store in ``out_dir``; no store there raises one line."""
    from apps.bench.store import ResultStore, store_path

    folder = Path(out_dir)
    if not folder.is_dir():
        raise UserInputError(
            f"no campaign folder {str(folder)!r}; give a `fedleak bench --out` DIR"
        )
    with ResultStore.open(store_path(folder)) as store:
        return build_report(store.rows(), store.suites())


def report_table(report: SuiteReport) -> tuple[list[str], list[list[str]]]:
    """The header and the rows, as text, of one suite's table (the CLI's and the viewer's):
    the row keys, images, cells, per metric the medians ``a / b / c`` in column order, and a
    verdict per goal."""
    spec = report.spec
    over = " / ".join(report.columns)
    header = [*spec.rows, "images", "cells"]
    header += [f"{metric} {over}".rstrip() for metric in spec.metrics]
    header += [goal.name for goal in spec.goals]
    lines = []
    for row in report.rows:
        failed = f" ({row.failed} failed)" if row.failed else ""
        values = [_key(row.keys[k]) for k in spec.rows] + [str(row.images), f"{row.cells}{failed}"]
        for metric in spec.metrics:
            values.append(" / ".join(_cell_text(row, column, metric) for column in report.columns))
        lines.append(values + [row.verdicts[goal.name] for goal in spec.goals])
    return header, lines


def to_markdown(reports: Iterable[SuiteReport]) -> str:
    """Markdown: per suite a heading, its table, its goals' expressions."""
    parts = []
    for report in reports:
        heading = f"### {report.suite or 'suite ?'}"
        parts.append(heading + (f" — {report.description}" if report.description else ""))
        header, rows = report_table(report)
        lines = [_line(header), _line(["---"] * len(header)), *(_line(row) for row in rows)]
        parts.append("\n".join(lines))
        parts += [f"{goal.name}: `{goal.expression}`" for goal in report.spec.goals]
        if report.unscored:
            parts.append(f"{report.unscored} done cells not scored yet: `fedleak bench score DIR`")
    return "\n\n".join(parts) + "\n"


def write_plots(reports: Iterable[SuiteReport], folder: Path) -> list[Path]:
    """PNG plots into ``folder``: per suite and metric grouped bars (rows × columns; infinite
    medians left out), and PSNR against accuracy where the rows have both; returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for report in reports:
        labels = [" ".join(_key(row.keys[k]) for k in report.spec.rows) for row in report.rows]
        for metric in report.spec.metrics:
            figure, axes = plt.subplots(figsize=(max(6.0, 0.8 * len(labels) + 2), 4.5))
            width = 0.8 / max(1, len(report.columns))
            for number, column in enumerate(report.columns):
                heights = [_finite(row.medians.get(column, {}).get(metric)) for row in report.rows]
                x = [i + number * width for i, h in enumerate(heights) if h is not None]
                axes.bar(x, [h for h in heights if h is not None], width, label=column or metric)
            axes.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))], labels)
            axes.tick_params(axis="x", labelrotation=30, labelsize=7)
            axes.set_ylabel(f"median {metric}")
            axes.set_title(f"{report.suite}: median {metric}")
            if report.columns != ("",):
                axes.legend(fontsize=8)
            written.append(_save(figure, folder / f"{report.suite}-{metric}.png"))
        points = [
            (values["accuracy"], values["psnr"], label)
            for row, label in zip(report.rows, labels, strict=True)
            for values in row.medians.values()
            if _finite(values.get("accuracy")) is not None
            and _finite(values.get("psnr")) is not None
        ]
        if points:
            figure, axes = plt.subplots(figsize=(8, 5.5))
            axes.scatter([p[0] for p in points], [p[1] for p in points])
            for accuracy, psnr, label in points:
                axes.annotate(
                    label, (accuracy, psnr), fontsize=7, xytext=(3, 3), textcoords="offset points"
                )
            guesses = [
                values["random_psnr"]
                for row in report.rows
                for values in row.medians.values()
                if _finite(values.get("random_psnr")) is not None
            ]
            if guesses:
                axes.axhline(
                    statistics.median(guesses), color="grey", linestyle="--", label="random guess"
                )
                axes.legend(fontsize=8)
            axes.set_xlabel("final test accuracy")
            axes.set_ylabel("attack median PSNR (dB)")
            axes.set_title(f"{report.suite}: leakage against utility")
            written.append(_save(figure, folder / f"{report.suite}-psnr-vs-accuracy.png"))
    return written


def report_json(reports: Iterable[SuiteReport], plots: Iterable[Path] = ()) -> str:
    """One JSON line: every suite's table and the plots written."""
    suites = [report.to_json() for report in reports]
    return json.dumps({"suites": suites, "plots": [str(p) for p in plots]}, allow_nan=False)


def _suite_of(name: str, recorded: str | None) -> dict:
    """The suite's JSON as recorded in the store, else a built-in suite's, else nothing."""
    from apps.bench.suite import load_suite, suite_names

    if recorded is not None:
        return _json(recorded)
    if name in suite_names():
        return load_suite(name).model_dump(mode="json")
    return {}


def _spec_of(suite: dict) -> ReportSpec:
    from pydantic import ValidationError

    try:
        return ReportSpec.model_validate(suite.get("report") or {})
    except ValidationError:  # recorded by another fedleak version: the default table
        return ReportSpec()


def _axis_order(grids: object) -> dict[str, list[object]]:
    """Each grid axis's values in the order the suite's grids give them; a kind's grid gives
    its cells' fields in the order its cells name them."""
    order: dict[str, list[object]] = {}
    for grid in grids if isinstance(grids, list) else ():
        for name, value in _kind_fields(grid):
            known = order.setdefault(name, [])
            if value not in known:
                known.append(value)
        for axis, values in grid.items() if isinstance(grid, dict) else ():
            if isinstance(values, list):
                known = order.setdefault(axis, [])
                known += [v for v in values if v not in known]
    return order


def _kind_fields(grid: object) -> list[tuple[str, object]]:
    """(field, value) of each cell of a recorded kind's grid, in cell order; none for others."""
    from pydantic import ValidationError

    from apps.bench.kinds import KINDS

    kind = KINDS.get(str(grid.get("kind"))) if isinstance(grid, dict) else None
    if kind is None:
        return []
    try:
        cells = kind.grid.model_validate(grid).cells()
    except ValidationError:  # recorded by another fedleak version
        return []
    return [(k, _hashable(v)) for c in cells for k, v in json.loads(c.config_json()).items()]


def _ranked(axis: str, value: object, order: dict[str, list[object]]) -> tuple:
    """Sort key: the suite's order of an axis's values, then the others by text."""
    known = order.get(axis, [])
    return (known.index(value), "") if value in known else (len(known), _key(value))


def _suite_report(
    name: str,
    description: str,
    spec: ReportSpec,
    members: list[Mapping[str, object]],
    order: dict[str, list[object]],
) -> SuiteReport:
    metrics = spec.read_metrics()
    groups: dict[tuple, dict[str, list[dict]]] = {}
    failed: dict[tuple, int] = {}
    columns: dict[str, tuple] = {}  # a column's name → its fields' values
    unscored = 0
    for row in members:
        config = _json(row.get("config_json"))
        fields = cell_fields(config)
        values = {
            k: _hashable(fields.get(k, row.get(k, _OMITTED_DEFAULTS.get(k))))
            for k in (*spec.rows, *spec.column_fields())
        }
        key = tuple(values[k] for k in spec.rows)
        column = spec.column_name(values)
        columns.setdefault(column, tuple(str(values[k]) for k in spec.column_fields()))
        groups.setdefault(key, {})
        if row.get("status") != "done":
            failed[key] = failed.get(key, 0) + 1
            continue
        found = _json(row.get("metrics_json"))
        if found.get("scored") is False:
            unscored += 1
            continue
        images = len(config.get("indices") or ()) or int(row.get("images") or 0)
        cell = {"images": images} | {m: _values(m, row, found, spec.per_image) for m in metrics}
        groups[key].setdefault(column, []).append(cell)
    table = []
    ranked = sorted(
        groups, key=lambda k: [_ranked(a, v, order) for a, v in zip(spec.rows, k, strict=True)]
    )
    for key in ranked:
        by_column = groups[key]
        medians = {
            column: {m: _median([v for c in cells for v in c[m]]) for m in metrics}
            for column, cells in by_column.items()
        }
        intervals = {
            column: {m: bootstrap_interval([v for c in cells for v in c[m]]) for m in spec.metrics}
            for column, cells in by_column.items()
            if spec.intervals
        }

        def lookup(metric: str, column: str | None, medians: dict = medians) -> float | None:
            return medians.get(column or "", {}).get(metric)

        texts = {k: _key(v) for k, v in zip(spec.rows, key, strict=True)}
        verdicts = {
            goal.name: {True: "met", False: "missed", None: "n/a"}[
                evaluate_goal(goal.expression, lookup)
            ]
            if goal.applies_to(texts)
            else "–"
            for goal in spec.goals
        }
        table.append(
            ReportRow(
                keys=dict(zip(spec.rows, key, strict=True)),
                cells=sum(len(cells) for cells in by_column.values()),
                failed=failed.get(key, 0),
                images=max(
                    (sum(c["images"] for c in cells) for cells in by_column.values()), default=0
                ),
                medians=medians,
                verdicts=verdicts,
                intervals=intervals,
            )
        )
    columns_in_order = sorted(columns, key=lambda c: _column_rank(spec, columns[c], order))
    return SuiteReport(name, description, spec, tuple(columns_in_order), tuple(table), unscored)


def _column_rank(spec: ReportSpec, values: tuple, order: dict[str, list[object]]) -> tuple:
    """Per field of a column, the suite's order of its value, then the others by text."""
    rank = []
    for name, value in zip(spec.column_fields(), values, strict=True):
        known = [str(v) for v in order.get(name, [])]
        rank.append((known.index(value), "") if value in known else (len(known), value))
    return tuple(rank)


def _values(
    name: str, row: Mapping[str, object], metrics: dict, per_image: bool
) -> list[float | None]:
    """A cell's values of a metric: each image's where ``per_image`` and the cell scored each
    (an exact PSNR, null, is +∞), else the one :func:`_metric`."""
    scored = (metrics.get("per_image") or {}).get(name) if per_image else None
    if not isinstance(scored, list):
        return [_metric(name, row, metrics)]
    if name == "psnr":
        return [math.inf if v is None else float(v) for v in scored]
    return [None if v is None else float(v) for v in scored]


def _metric(name: str, row: Mapping[str, object], metrics: dict) -> float | None:
    """A cell's value: the store's column, else its metrics; an exact PSNR (null) is +∞."""
    value = row[name] if name in row else metrics.get(name)
    if name == "psnr" and value is None:
        return math.inf
    return None if value is None else float(value)


def bootstrap_interval(values: list[float | None]) -> tuple[float, float] | None:
    """The 95 % percentile-bootstrap interval of the median of ``values`` (None left out;
    scipy, 2,000 resamples, seeded), or None with fewer than two values."""
    import numpy as np
    from scipy.stats import bootstrap

    present = np.array([v for v in values if v is not None], dtype=float)
    if len(present) < 2:
        return None
    if np.all(present == present[0]):
        return float(present[0]), float(present[0])
    with np.errstate(invalid="ignore"):  # medians of +∞ (exact reconstructions) stay +∞
        result = bootstrap(
            (present,),
            np.median,
            n_resamples=2000,
            method="percentile",
            random_state=np.random.default_rng(0),
        )
    low, high = result.confidence_interval
    return tuple(math.inf if math.isnan(end) else float(end) for end in (low, high))


def _cell_text(row: ReportRow, column: str, metric: str) -> str:
    """A median as the table prints it, with its interval where the report has one."""
    text = _number(metric, row.medians.get(column, {}).get(metric))
    interval = row.intervals.get(column, {}).get(metric)
    if interval is None:
        return text
    return f"{text} [{_number(metric, interval[0])}, {_number(metric, interval[1])}]"


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _json(text: object) -> dict:
    if not isinstance(text, str):
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _hashable(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def _key(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _number(metric: str, value: float | None) -> str:
    if value is None:
        return "–"
    if math.isinf(value):
        return "inf"
    digits = _DIGITS.get(metric)
    if digits is not None:
        return f"{value:.{digits}f}"
    return f"{value:.3g}" if abs(value) >= 1000 or 0 < abs(value) < 0.001 else f"{value:.3f}"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _line(values: list[str]) -> str:
    return "| " + " | ".join(values) + " |"


def _save(figure: object, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
