"""What the attack benchmarks share: held-out image draws, per-cell scores, and a resumable
JSONL log of finished cells run by a pool of one-thread workers."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Hashable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from apps.bench.images import image_indices  # noqa: F401  (dia.py and gifd.py import it here)

RESULTS_DIR = Path(__file__).parent / "results"


def scores_of(reconstruction, truth) -> dict:
    """Median PSNR (null when exact), SSIM, LPIPS (null offline), ST-LPIPS, labels, effort."""
    from apps.scoring import score

    summary = score(reconstruction, truth).summary()
    return {
        **summary,
        "iterations": reconstruction.iterations,
        "wall_s": reconstruction.wall_s,
    }


def run_cells(
    cells: list[dict],
    attack_cell: Callable[[dict], dict],
    key: Callable[[dict], Hashable],
    results: Path,
    workers: int,
) -> dict[Hashable, dict]:
    """Run the cells not yet in ``results`` (one JSON line each, appended as they finish)."""
    results.parent.mkdir(parents=True, exist_ok=True)
    lines = results.read_text().splitlines() if results.is_file() else []
    done = {key(row): row for row in (json.loads(line) for line in lines if line.strip())}
    todo = [cell for cell in cells if key(cell) not in done]
    print(f"{len(cells)} cells, {len(cells) - len(todo)} already in {results}", flush=True)
    # A fresh process per cell: memory a cell leaves behind (a worker reached 24 GB after nine
    # GIFD cells and was killed) and warm caches then cannot reach the next cell.
    with ProcessPoolExecutor(workers, max_tasks_per_child=1) as pool:
        for row in pool.map(attack_cell, todo):
            with results.open("a") as handle:
                handle.write(json.dumps(row, allow_nan=False) + "\n")
            done[key(row)] = row
            print(f"{key(row)} {_headline(row)}", flush=True)
    return done


def medians(per_cell: list[dict]) -> dict:
    """Medians over cells of one attack: PSNR (null = exact), SSIM, LPIPS (null if any cell
    lacks it), ST-LPIPS."""
    lpips = [r["lpips"] for r in per_cell]
    return {
        "psnr": median([r["psnr"] for r in per_cell]),
        "ssim": statistics.median(r["ssim"] for r in per_cell),
        "lpips": None if None in lpips else statistics.median(lpips),
        "st_lpips": statistics.median(r["st_lpips"] for r in per_cell),
    }


def median(values: list[float | None]) -> float | None:
    """Median where null means +inf (an exact PSNR) — null again if the median is infinite."""
    middle = statistics.median(math.inf if v is None else v for v in values)
    return middle if math.isfinite(middle) else None


def psnr_cell(value: float | None) -> str:
    """A median PSNR for a table column: ``inf`` where it is exact (null)."""
    return "  inf" if value is None else f"{value:5.1f}"


def _headline(row: dict) -> str:
    """PSNR per attack of an attack cell, or what else the cell measured."""
    if "attacks" in row:
        return f"PSNR { {a: _rounded(r['psnr']) for a, r in row['attacks'].items()} }"
    return json.dumps({k: v for k, v in row.items() if isinstance(v, (int, float))})


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
