"""The landing page: every run under the root with its headline metrics; a row opens its page."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import streamlit as st

from apps.viewer.discovery import load_run
from apps.viewer.records import AttackRun, Run, RunLocation, SimulationRun
from apps.viewer.widgets import filter_frame
from fedsim.errors import FedleakError

COLUMNS = ["kind", "path", "psnr", "ssim", "lpips", "st_lpips", "accuracy", "detail"]


def render(root: Path, locations: tuple[RunLocation, ...]) -> str | None:
    """Draw the table of runs; return the path of the row the user selected, if any."""
    st.title("fedleak runs")
    st.caption(f"{len(locations)} run(s) under {root}")
    if not locations:
        st.info(
            "No run here yet. Make one with `fedleak attack --out DIR`, "
            "`fedleak simulate --out DIR` or `fedleak bench --out DIR`."
        )
        return None
    table = pd.DataFrame([headline(root, location) for location in locations], columns=COLUMNS)
    shown = filter_frame(table, ["kind"], key="landing").reset_index(drop=True)
    event = st.dataframe(
        shown,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="landing-table",
        column_config={
            "psnr": st.column_config.NumberColumn("PSNR (dB)", format="%.2f"),
            "ssim": st.column_config.NumberColumn("SSIM", format="%.3f"),
            "lpips": st.column_config.NumberColumn("LPIPS", format="%.3f"),
            "st_lpips": st.column_config.NumberColumn("ST-LPIPS", format="%.3f"),
            "accuracy": st.column_config.NumberColumn("accuracy", format="%.3f"),
        },
    )
    st.caption("Select a row, or pick a run in the sidebar, to open it.")
    rows = event.selection.rows if event is not None else []
    return str(shown.loc[rows[0], "path"]) if rows else None


def headline(root: Path, location: RunLocation) -> dict[str, object]:
    """One landing row: kind, path and headline metrics; an unreadable run says why in detail."""
    row: dict[str, object] = {"kind": location.kind, "path": location.path}
    try:
        run = load_run(root, location.path)
    except FedleakError as error:
        return {**row, "detail": f"unreadable: {error}"}
    return {**row, **_metrics(run)}


def _metrics(run: Run) -> dict[str, object]:
    if isinstance(run, AttackRun):
        steps = f"{run.iterations:,} iterations" if run.iterations is not None else ""
        return {
            "psnr": run.psnr,
            "ssim": run.ssim,
            "lpips": run.lpips,
            "st_lpips": run.st_lpips,
            "detail": " · ".join(part for part in (run.attack or "", steps) if part),
        }
    if isinstance(run, SimulationRun):
        final = next((v for v in reversed(run.accuracy) if v is not None), None)
        facts = [run.dataset, run.model, f"{run.clients} clients", f"{run.rounds} rounds"]
        facts.append(f"{len(run.attacks)} attack(s)")
        return {"accuracy": final, "detail": " · ".join(str(f) for f in facts)}
    done = [cell for cell in run.cells if cell.status == "done"]
    failed = sum(cell.status == "failed" for cell in run.cells)
    return {
        "psnr": _median(cell.psnr for cell in done),
        "ssim": _median(cell.ssim for cell in done),
        "lpips": _median(cell.lpips for cell in done),
        "st_lpips": _median(cell.st_lpips for cell in done),
        "accuracy": _median(cell.accuracy for cell in done),
        "detail": f"bench: {len(run.cells)} cells ({len(done)} done, {failed} failed); medians",
    }


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None
