"""The viewer's Streamlit script: ``streamlit run app.py -- --root DIR``.

``?run=PATH`` (relative to DIR) opens a run's page; without it the landing page lists every
run, unless DIR's ``view.json`` names a run to start on (once per browser session).
Whatever the page asks for is resolved inside DIR first (``paths.resolve_inside``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import streamlit as st

from apps.viewer import (
    attack_page,
    bench_page,
    camouflage_page,
    fusion_page,
    landing,
    simulation_page,
)
from apps.viewer.discovery import discover_runs, load_run, start_run
from apps.viewer.records import AttackRun, RunLocation, SimulationRun
from fedsim.errors import FedleakError

ALL_RUNS = "(all runs)"


def viewer_root(argv: list[str]) -> Path | None:
    """The ``--root DIR`` after streamlit's ``--``, or None."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--root", type=Path)
    return parser.parse_known_args(argv)[0].root


def main() -> None:
    """Route to the landing page or the requested run's page."""
    st.set_page_config(page_title="fedleak viewer", layout="wide")
    root = viewer_root(sys.argv[1:])
    if root is None or not root.is_dir():
        st.error(f"No folder of runs to show ({root}): start the viewer with `fedleak view DIR`.")
        return
    locations = discover_runs(root)
    requested = st.query_params.get("run")
    first_visit = not st.session_state.get("started")
    st.session_state["started"] = True
    if requested is None and first_visit:
        start = start_run(root, locations)
        if start is not None:
            _open(start)
    picked = _sidebar(root, locations, requested)
    if picked != requested:
        _open(picked)
    if requested is None:
        selected = landing.render(root, locations)
        if selected is not None:
            _open(selected)
        return
    try:
        run = load_run(root, requested)
    except FedleakError as error:
        st.error(str(error))
        return
    if isinstance(run, AttackRun):
        attack_page.render(root, run)
    elif isinstance(run, SimulationRun):
        simulation_page.render(root, run)
    elif fusion_page.shows(run):
        fusion_page.render(root, run)
    elif camouflage_page.shows(run):
        camouflage_page.render(root, run)
    else:
        bench_page.render(root, run)


def _sidebar(root: Path, locations: tuple[RunLocation, ...], requested: str | None) -> str | None:
    """A run picker that follows the URL; returns the run chosen (None: the landing page)."""
    st.sidebar.header("fedleak viewer")
    st.sidebar.caption(str(root))
    options = [ALL_RUNS, *(location.path for location in locations)]
    if requested is not None and requested not in options:
        options.append(requested)
    current = ALL_RUNS if requested is None else requested
    picked = st.sidebar.selectbox("run", options, index=options.index(current))
    return None if picked == ALL_RUNS else picked


def _open(path: str | None) -> None:
    if path is None:
        st.query_params.clear()
    else:
        st.query_params["run"] = path
    st.rerun()


if __name__ == "__main__":
    main()
