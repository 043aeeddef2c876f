"""A bench store's page: every cell with filters, leakage per defense, privacy against utility,
and the tables of ``fedleak bench report``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd
import streamlit as st

from apps.bench.report import build_report, report_table
from apps.viewer.attack_page import render_attack
from apps.viewer.discovery import read_attack_run
from apps.viewer.records import BenchCell, BenchRun
from apps.viewer.widgets import filter_frame, fmt_db, fmt_number, metric_row
from fedsim.errors import FedleakError

TABLE_COLUMNS = [
    "cell_id",
    "status",
    "suite",
    "dataset",
    "model",
    "attack",
    "defense",
    "batch_size",
    "images",
    "seed",
    "psnr",
    "ssim",
    "lpips",
    "st_lpips",
    "label_accuracy",
    "accuracy",
    "epsilon",
    "wall_s",
    "error",
]
FILTER_COLUMNS = ["suite", "status", "dataset", "model", "attack", "defense", "batch_size"]


def render(root: Path, run: BenchRun) -> None:
    """The whole page of one bench folder."""
    st.title("Bench")
    st.caption(run.store)
    if not run.cells:
        st.info(f"{run.store} holds no cells yet.")
        return
    cells = pd.DataFrame([asdict(cell) for cell in run.cells])[TABLE_COLUMNS]
    done = cells[cells["status"] == "done"]
    metric_row(
        [
            ("cells", str(len(cells)), None),
            ("done", str(len(done)), None),
            ("failed", str(int((cells["status"] == "failed").sum())), None),
            ("median PSNR", fmt_db(_median(done["psnr"])), "over done cells; higher leaks more"),
            ("median SSIM", fmt_number(_median(done["ssim"])), None),
            ("median ST-LPIPS", fmt_number(_median(done["st_lpips"])), "lower is closer"),
        ]
    )
    st.subheader("Cells")
    shown = filter_frame(cells, FILTER_COLUMNS, key=f"{run.path}-cells")
    st.dataframe(shown, hide_index=True, key=f"{run.path}-cell-table")
    shown_done = shown[shown["status"] == "done"]
    left, right = st.columns(2)
    with left:
        st.subheader("Leakage by defense")
        _leakage_by_defense(shown_done)
    with right:
        st.subheader("Privacy against utility")
        _privacy_utility(shown_done)
    st.subheader("Report")
    report_section(run)
    st.subheader("One cell")
    _cell_detail(root, run, [c for c in run.cells if c.cell_id in set(shown["cell_id"])])


def report_section(run: BenchRun) -> None:
    """The tables of `fedleak bench report`, from the same builder."""
    for report in build_report([asdict(cell) for cell in run.cells], run.suites):
        header, rows = report_table(report)
        title = report.suite + (f" — {report.description}" if report.description else "")
        st.caption(title)
        st.dataframe(pd.DataFrame(rows, columns=header), hide_index=True)
        for goal in report.spec.goals:
            st.caption(f"{goal.name}: `{goal.expression}`")
        if report.unscored:
            st.info(f"{report.unscored} done cells not scored yet: `fedleak bench score DIR`")


def defense_summary(done: pd.DataFrame) -> pd.DataFrame:
    """Per defense: cells and median / min / max PSNR (dB) of done cells, ``none`` first."""
    scored = done.dropna(subset=["psnr"]).assign(defense=done["defense"].fillna("none"))
    if scored.empty:
        return pd.DataFrame(columns=["defense", "cells", "median PSNR", "min PSNR", "max PSNR"])
    grouped = scored.groupby("defense")["psnr"]
    summary = pd.DataFrame(
        {
            "cells": grouped.size(),
            "median PSNR": grouped.median(),
            "min PSNR": grouped.min(),
            "max PSNR": grouped.max(),
        }
    )
    order = sorted(summary.index, key=lambda name: (name != "none", name))
    return summary.loc[order].reset_index()


def _leakage_by_defense(done: pd.DataFrame) -> None:
    summary = defense_summary(done)
    if summary.empty:
        st.info("No done cell with a PSNR.")
        return
    st.bar_chart(summary, x="defense", y="median PSNR", y_label="median PSNR (dB)", sort=False)
    st.dataframe(summary, hide_index=True)


def _privacy_utility(done: pd.DataFrame) -> None:
    with_accuracy = done.dropna(subset=["psnr", "accuracy"])
    if with_accuracy.empty:
        st.info("No cell records a model accuracy.")
    else:
        st.caption("PSNR (leakage) against the model's test accuracy (utility), per cell")
        st.scatter_chart(
            with_accuracy.assign(defense=with_accuracy["defense"].fillna("none")),
            x="accuracy",
            y="psnr",
            color="defense",
            x_label="test accuracy",
            y_label="PSNR (dB)",
        )
    with_epsilon = done.dropna(subset=["psnr", "epsilon"])
    if not with_epsilon.empty:
        st.caption("PSNR against the privacy budget ε spent, per differentially private cell")
        st.scatter_chart(with_epsilon, x="epsilon", y="psnr", x_label="ε", y_label="PSNR (dB)")


def _cell_detail(root: Path, run: BenchRun, cells: list[BenchCell]) -> None:
    if not cells:
        st.info("No cell matches the filters.")
        return
    by_id = {cell.cell_id: cell for cell in cells}
    first_done = next((i for i, cell in enumerate(cells) if cell.status == "done"), 0)
    cell = by_id[st.selectbox("cell", list(by_id), index=first_done, key=f"{run.path}-cell")]
    st.caption(" · ".join(str(v) for v in (cell.dataset, cell.model, cell.attack, cell.defense)))
    if cell.status == "failed":
        st.error(f"cell {cell.cell_id} failed: {cell.error or 'no error recorded'}")
        return
    if not cell.cell_dir:
        st.info("This cell records no run folder.")
        return
    folder = cell.cell_dir if run.path == "." else f"{run.path}/{cell.cell_dir}"
    try:
        attack = read_attack_run(root, folder)
    except FedleakError as error:
        st.warning(f"cell folder {folder} cannot be read: {error}")
        return
    render_attack(root, attack, key=folder)


def _median(values: pd.Series) -> float | None:
    values = values.dropna()
    return None if values.empty else float(values.median())
