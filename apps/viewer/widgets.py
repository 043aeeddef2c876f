"""Page pieces shared by the viewer's pages: number formats, metric rows, filters, the grid."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import streamlit as st
from PIL import Image

from apps.viewer.paths import UnsafePathError, resolve_inside

NOT_AVAILABLE = "n/a"
GRID_WIDTH = 480  # pixels a small grid is enlarged towards


def fmt_db(value: float | None) -> str:
    """A PSNR in dB, two decimals, or n/a."""
    return NOT_AVAILABLE if value is None else f"{value:.2f} dB"


def fmt_number(value: float | None, digits: int = 3) -> str:
    """A score with ``digits`` decimals, or n/a."""
    return NOT_AVAILABLE if value is None else f"{value:.{digits}f}"


def fmt_share(value: float | None) -> str:
    """A fraction in [0, 1] as a percentage, or n/a."""
    return NOT_AVAILABLE if value is None else f"{100 * value:.1f} %"


def metric_row(items: Sequence[tuple[str, str, str | None]]) -> None:
    """One row of ``st.metric`` tiles from (label, shown value, help) triples."""
    for column, (label, value, help_text) in zip(st.columns(len(items)), items, strict=True):
        column.metric(label, value, help=help_text)


def filter_frame(frame: pd.DataFrame, columns: Iterable[str], key: str) -> pd.DataFrame:
    """A multiselect per column that has several values; rows matching every choice remain.

    An empty choice keeps every row, so the table starts unfiltered.
    """
    choosable = [
        name for name in columns if name in frame and frame[name].dropna().astype(str).nunique() > 1
    ]
    if not choosable:
        return frame
    keep = pd.Series(True, index=frame.index)
    for column, name in zip(st.columns(len(choosable)), choosable, strict=True):
        options = sorted(frame[name].dropna().astype(str).unique())
        chosen = column.multiselect(name, options, key=f"{key}-{name}", placeholder="all")
        if chosen:
            keep &= frame[name].astype(str).isin(chosen)
    return frame[keep]


def show_grid(root: Path, grid: str | None, caption: str) -> None:
    """The originals-over-reconstructions PNG at ``grid`` (relative to root), read safely."""
    if grid is None:
        st.info("No grid.png in this run.")
        return
    try:
        with Image.open(resolve_inside(root, grid)) as png:
            image = png.convert("RGB")
    except (UnsafePathError, OSError) as error:
        st.warning(f"{grid} cannot be shown: {error}")
        return
    # Grids of a few 32-pixel images are tiny; enlarge by whole pixels so they stay sharp.
    scale = max(1, GRID_WIDTH // image.width)
    image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    st.image(image, caption=caption)
