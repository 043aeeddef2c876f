"""Fixtures of the viewer tests: a folder with one run of each kind, the viewer under AppTest."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from viewer_runs import write_attack_run, write_bench_store, write_simulation_run

from apps.viewer import app as viewer_app


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    """A folder holding one of each: ``attack``, ``sim`` (with an attack), ``bench``."""
    root = tmp_path / "runs"
    write_attack_run(root / "attack", psnr=21.5)
    write_simulation_run(root / "sim", privacy=True)
    write_bench_store(root / "bench")
    return root


@pytest.fixture
def open_viewer(monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    """Factory: ``open_viewer(root, run=None)`` runs the viewer's script on ``root``."""

    def run(root: Path, run: str | None = None) -> AppTest:
        monkeypatch.setattr(sys, "argv", [viewer_app.__file__, "--root", str(root)])
        page = AppTest.from_file(viewer_app.__file__, default_timeout=30)
        if run is not None:
            page.query_params["run"] = run
        return page.run()

    return run
