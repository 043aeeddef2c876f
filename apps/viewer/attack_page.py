"""An attack run's page: headline metrics, originals over reconstructions, per image, history."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from apps.viewer.records import AttackRun
from apps.viewer.widgets import fmt_db, fmt_number, fmt_share, metric_row, show_grid

GRID_CAPTION = "originals (top row) · paired reconstructions (below)"
HISTORY_POINTS = 2_000


def render(root: Path, run: AttackRun) -> None:
    """The whole page of one attack run folder."""
    st.title(f"Attack · {run.attack or 'unknown attack'}")
    st.caption(run.path)
    render_attack(root, run, key=run.path)
    with st.expander("config.json"):
        st.json(dict(run.config), expanded=False)


def render_attack(root: Path, run: AttackRun, *, key: str) -> None:
    """Metrics, grid, per-image table and history of one attack (also used inside other pages)."""
    metric_row(attack_metrics(run))
    st.caption(" · ".join(search_facts(run)))
    grid_column, detail_column = st.columns([3, 2])
    with grid_column:
        show_grid(root, run.grid, GRID_CAPTION)
    with detail_column:
        if run.per_image:
            st.markdown("**Per image**")
            st.dataframe(pd.DataFrame(run.per_image), hide_index=True, key=f"{key}-per-image")
        if run.true_labels or run.recovered_labels:
            st.caption(
                f"labels: true {list(run.true_labels)}, recovered {list(run.recovered_labels)}"
            )
    history = pd.DataFrame(run.history)
    if len(history) > HISTORY_POINTS:  # a 20,000-step search draws as well from 2,000 points
        history = history.iloc[:: len(history) // HISTORY_POINTS + 1]
    if not history.empty:
        measured = [name for name in history.columns if name != "iteration"]
        st.markdown("**Over iterations**")
        for column, name in zip(st.columns(len(measured)), measured, strict=True):
            column.line_chart(history, x="iteration", y=name, y_label=name.replace("_", " "))


def attack_metrics(run: AttackRun) -> list[tuple[str, str, str | None]]:
    """The headline tiles of one attack: PSNR, SSIM, LPIPS, ST-LPIPS and labels recovered."""
    return [
        ("PSNR", fmt_db(run.psnr), "median over the batch; pixels in [0, 1]; higher leaks more"),
        ("SSIM", fmt_number(run.ssim), "median over the batch; 1 is identical"),
        ("LPIPS", fmt_number(run.lpips), run.lpips_unavailable or "AlexNet; lower is closer"),
        ("ST-LPIPS", fmt_number(run.st_lpips), "shift-tolerant LPIPS; lower is closer"),
        ("labels", fmt_share(run.label_accuracy), "share of labels recovered"),
    ]


def search_facts(run: AttackRun) -> list[str]:
    """What the search cost and reached: iterations, time, final gradient distance, LPIPS gap."""
    facts = []
    if run.iterations is not None:
        facts.append(f"{run.iterations:,} iterations")
    if run.wall_s is not None:
        facts.append(f"{run.wall_s:.1f} s")
    if run.gradient_distance is not None:
        facts.append(f"gradient distance {run.gradient_distance:.4g}")
    if run.lpips is None and run.lpips_unavailable:
        facts.append(f"LPIPS unavailable: {run.lpips_unavailable}")
    return facts
