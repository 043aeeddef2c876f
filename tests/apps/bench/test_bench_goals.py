"""Goal expressions scale a term by a number, and refuse any other product; a report's goals
have names of their own."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from apps.bench.goals import Median, evaluate_goal, parse_goal
from apps.bench.report_spec import ReportSpec

MEDIANS = {("ap50", "dta"): 0.3, ("ap50", "random"): 0.7, ("ap50", "normal"): 0.9}


def _lookup(metric: str, column: str | None) -> float | None:
    return MEDIANS.get((metric, column))


def test_a_term_scaled_by_a_number() -> None:
    goal = "ap50[dta] <= 0.5 * ap50[random] and ap50[dta] <= 0.4 * ap50[normal]"

    assert parse_goal(goal, {"ap50"}, with_columns=True) == [
        Median("ap50", "dta"), Median("ap50", "random"), Median("ap50", "dta"),
        Median("ap50", "normal"),
    ]  # fmt: skip
    assert evaluate_goal(goal, _lookup) is True  # 0.3 <= 0.35 and 0.3 <= 0.36
    assert evaluate_goal("ap50[dta] <= 0.4 * ap50[random]", _lookup) is False
    assert evaluate_goal("ap50[dta] <= 0.5 * ap50[van]", _lookup) is None


@pytest.mark.parametrize("goal", ["ap50[dta] * 2 <= 1", "ap50[dta] * ap50[random] <= 1"])
def test_only_a_number_may_scale(goal: str) -> None:
    with pytest.raises(ValueError, match="is not allowed; use numbers"):
        parse_goal(goal, {"ap50"}, with_columns=True)


def test_two_goals_of_one_name_are_refused() -> None:
    goal = {"name": "DTA ≤ ½ random", "expression": "ap50[dta] <= 0.5 * ap50[random]"}

    with pytest.raises(ValidationError, match="'DTA ≤ ½ random' is used twice"):
        ReportSpec(rows=("detector",), columns="texture", metrics=("ap50",), goals=(goal, goal))
