"""``fedleak demo`` end to end: a readable grid, the viewer's start page and the closing hint."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from apps.grids import MIN_IMAGE_PX


def test_the_demo_writes_a_readable_grid_and_says_how_to_view_it(
    tmp_path: Path, run_cli, data_dir: Path
) -> None:
    out = tmp_path / "demo"

    code, stdout, stderr = run_cli(["demo", "--out", str(out)])

    assert code == 0, stderr
    assert stdout.strip().splitlines()[-1] == f"See it in your browser: fedleak view {out}"
    metrics = json.loads((out / "attack" / "metrics.json").read_text())
    assert len(metrics["true_labels"]) == 1
    with Image.open(out / "attack" / "grid.png") as grid:
        width, height = grid.size
    assert width >= MIN_IMAGE_PX and height >= 2 * MIN_IMAGE_PX
    assert json.loads((out / "view.json").read_text()) == {"start": "attack"}
