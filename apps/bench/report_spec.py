"""A suite's ``[report]`` table: which medians ``fedleak bench report`` tabulates, grouped how,
and the goals each row is judged by::

    [report]
    rows = ["dataset", "model", "dropout"]      # cell fields; one table row per combination
    columns = "attack"                          # a cell field, "" for one column, or fields
                                                # joined by "+" (a column per combination,
                                                # named by the values joined by ":")
    metrics = ["psnr", "ssim", "st_lpips"]
    intervals = true                            # optional: 95 % bootstrap interval per median
    per_image = true                            # optional: medians over images, not cells
    [[report.goals]]
    name = "DIA ≥ IG + 10 dB"
    expression = "psnr[dia] >= psnr['dia-no-masks'] + 10"
    where = { dataset = ["cifar10"] }          # optional: judge only these rows (others: –)

Rows and columns may also name the fields of another kind's cells, and metrics what those
cells return (:mod:`apps.bench.kinds`).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from apps.bench.goals import Median, parse_goal
from apps.bench.kinds import KINDS

ATTACK_KEY_FIELDS = (
    "dataset",
    "split",
    "model",
    "dropout",
    "train_mode",
    "attack",
    "defense",
    "batch_size",
    "images",
    "seed",
    "classes",
    "local_steps",
    "per_class",
    "victim_rounds",
    "iterations",
    "time_budget_s",
    "restarts",
    "labels",
    "adaptive",
    "generator",
    "device",
)
KEY_FIELDS = tuple(
    dict.fromkeys([*ATTACK_KEY_FIELDS, *(f for kind in KINDS.values() for f in kind.key_fields)])
)
"""Cell fields a report may group by (a cell's config holds each)."""


def cell_fields(config: Mapping[str, object]) -> dict[str, object]:
    """A cell config's fields as reports group by them and ``--only`` selects them: its own,
    a capture cell's Flower-run settings as its own (``local_steps``, ...) and a trained
    victim's as ``victim_<key>`` (``victim_rounds``, ...)."""
    capture = config.get("capture") or {}
    victim = config.get("victim") or {}
    assert isinstance(capture, Mapping) and isinstance(victim, Mapping)
    return {**capture, **{f"victim_{k}": v for k, v in victim.items()}, **config}


ATTACK_METRICS = (
    "psnr",
    "ssim",
    "lpips",
    "st_lpips",
    "label_accuracy",
    "accuracy",
    "epsilon",
    "wall_s",
    "iterations",
    "gradient_distance",
    "random_psnr",
    "victim_accuracy",
)
METRICS = tuple(
    dict.fromkeys([*ATTACK_METRICS, *(m for kind in KINDS.values() for m in kind.metrics)])
)
"""What a report may take medians of: the store's metric columns, from each attack cell's
metrics the attack's steps, the gradient distance of its answer and the random guess's PSNR
(dB), and what kinds' cells return."""


COLUMN_JOINER = "+"
"""Joins the fields of ``columns`` that name one column together, e.g. ``attack+train_mode``."""


class Goal(BaseModel):
    """A verdict per row: ``met`` where the expression holds on the row's medians."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    expression: str = Field(min_length=1)
    where: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="row field → the values (as the table prints them) of the rows judged",
    )

    def applies_to(self, keys: dict[str, str]) -> bool:
        """Whether a row with these key texts is judged by this goal."""
        return all(keys.get(field) in values for field, values in self.where.items())


class ReportSpec(BaseModel):
    """How a suite's results are tabulated; the default groups by every grid axis but seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: tuple[str, ...] = ("dataset", "model", "dropout", "defense", "batch_size")
    columns: str = "attack"
    metrics: tuple[str, ...] = Field(("psnr", "ssim", "st_lpips"), min_length=1)
    goals: tuple[Goal, ...] = ()
    intervals: bool = Field(
        False, description="also a 95 % bootstrap interval of each median: 'median [low, high]'"
    )
    per_image: bool = Field(
        False,
        description="medians (and intervals) over every image of the row's cells where a cell "
        "scored each image (psnr, ssim, st_lpips, lpips), not over the cells' batch means",
    )

    @field_validator("rows")
    @classmethod
    def _known_rows(cls, rows: tuple[str, ...]) -> tuple[str, ...]:
        for name in rows:
            _known("report.rows", name, KEY_FIELDS)
        return rows

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, column: str) -> str:
        for name in column.split(COLUMN_JOINER) if column else ():
            _known("report.columns", name, KEY_FIELDS)
        return column

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics: tuple[str, ...]) -> tuple[str, ...]:
        for name in metrics:
            _known("report.metrics", name, METRICS)
        return metrics

    @model_validator(mode="after")
    def _goals_parse(self) -> ReportSpec:
        both = [name for name in self.column_fields() if name in self.rows]
        if both:
            raise ValueError(f"report.columns {both[0]!r} is also in report.rows")
        names = [goal.name for goal in self.goals]
        twice = [name for name in names if names.count(name) > 1]
        if twice:
            raise ValueError(f"report goal name {twice[0]!r} is used twice; name each goal apart")
        for goal in self.goals:
            self.medians_of(goal)
            bad = [field for field in goal.where if field not in self.rows]
            if bad:
                raise ValueError(
                    f"report goal {goal.name!r}: where {bad[0]!r} is not a report row; valid: "
                    f"{', '.join(self.rows)}"
                )
        return self

    def column_fields(self) -> tuple[str, ...]:
        """The cell fields whose values name a column (none: one column)."""
        return tuple(self.columns.split(COLUMN_JOINER)) if self.columns else ()

    def column_name(self, values: dict[str, object]) -> str:
        """The column of a cell with these field values: the values joined by ``:``."""
        return ":".join(str(values[name]) for name in self.column_fields())

    def medians_of(self, goal: Goal) -> list[Median]:
        """The medians a goal reads (checked against the metrics and the columns' use)."""
        return parse_goal(goal.expression, set(METRICS), with_columns=self.columns != "")

    def read_metrics(self) -> tuple[str, ...]:
        """The metrics shown and those only a goal reads, in that order, each once."""
        read = [m.metric for goal in self.goals for m in self.medians_of(goal)]
        return tuple(dict.fromkeys([*self.metrics, *read]))


def _known(where: str, name: str, valid: tuple[str, ...]) -> str:
    if name not in valid:
        raise ValueError(f"unknown {where} {name!r}; valid: {', '.join(valid)}")
    return name
