"""A camouflage bench store's page (cells of kind ``camouflage``, e.g. suite ``dta``): the
report's tables, AP@0.5 per texture, the patterns, renders of normal / random / DTA paint side
by side with the detector's boxes and scores, and the DTN's predicted-vs-real pairs with PSNR
and ST-LPIPS."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image, ImageDraw
from safetensors.numpy import load_file

from apps.bench.kinds.camouflage import EXAMPLES_FILE
from apps.viewer.bench_page import report_section
from apps.viewer.paths import UnsafePathError, resolve_inside
from apps.viewer.records import BenchCell, BenchRun
from apps.viewer.widgets import fmt_db, fmt_number
from attacks.camouflage.shipped import NAMED_TEXTURES

SHOWN_WIDTH = 256  # pixels a render is enlarged to
BOX_SCORE = 0.3  # boxes drawn: the detector's car boxes scoring at least this (the best always)
MOST_BOXES = 3


KIND = "camouflage"


def shows(run: BenchRun) -> bool:
    """Whether a bench folder holds camouflage cells (and nothing else): this page shows it."""
    return bool(run.cells) and all(_config(cell).get("kind") == KIND for cell in run.cells)


def render(root: Path, run: BenchRun) -> None:
    """The report, AP per texture, one detector's renders side by side, the DTN's pairs."""
    st.title("Camouflage")
    st.caption(run.store)
    cells = [(c, _config(c)) for c in run.cells if c.status == "done"]
    failed = [c for c in run.cells if c.status != "done"]
    if failed:
        st.warning(f"{len(failed)} cells failed: {failed[0].error or 'no error recorded'}")
    report_section(run)
    detection = [(c, k) for c, k in cells if k["measure"] == "detection"]
    dtn = [(c, k) for c, k in cells if k["measure"] == "dtn"]
    if detection:
        st.subheader("Textures in the renderer")
        st.caption("AP@0.5 in Mitsuba (through the DTN pipeline in brackets), held-out views")
        st.dataframe(ap_table(detection), hide_index=True, key=f"{run.path}-camouflage-ap")
        _side_by_side(root, run, detection)
    if dtn:
        st.subheader("DTN against the renderer")
        st.caption("The DTN's render (left of each pair) against Mitsuba's (right), held out")
        _dtn_pairs(root, run, dtn)


def _config(cell: BenchCell) -> dict:
    return json.loads(cell.config_json or "{}")


def _texture_order(textures: set[str]) -> list[str]:
    """The named textures present in their own order (normal, random, the shipped patterns),
    then pattern files by name."""
    return [t for t in NAMED_TEXTURES if t in textures] + sorted(textures - set(NAMED_TEXTURES))


def ap_table(cells: list[tuple[BenchCell, dict]]) -> pd.DataFrame:
    """One row per (detector, car), one column per texture: "AP (AP through the DTN)"."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for cell, config in cells:
        metrics = json.loads(cell.metrics_json or "{}")
        row = rows.setdefault(
            (config["detector"], config["car"]),
            {"detector": config["detector"], "car": config["car"]},
        )
        through = metrics.get("ap50_through_dtn")
        row[config["texture"]] = f"{fmt_number(metrics.get('ap50'))} ({fmt_number(through)})"
    order = _texture_order({config["texture"] for _, config in cells})
    return pd.DataFrame(list(rows.values()), columns=["detector", "car", *order])


def _side_by_side(root: Path, run: BenchRun, cells: list[tuple[BenchCell, dict]]) -> None:
    pairs = sorted({(k["detector"], k["car"]) for _, k in cells})
    names = [f"{detector} · {car}" for detector, car in pairs]
    chosen = pairs[names.index(st.selectbox("detector · car", names, key=f"{run.path}-cam"))]
    textures = {k["texture"]: c for c, k in cells if (k["detector"], k["car"]) == chosen}
    order = _texture_order(set(textures))
    examples = {t: _examples(root, run, textures[t]) for t in order}
    patterned = [t for t in order if examples[t] and "pattern" in examples[t]]
    for column, texture in zip(st.columns(len(order)), patterned, strict=False):
        texels = np.rint(examples[texture]["pattern"].transpose(1, 2, 0) * 255).astype(np.uint8)
        side = texels.shape[0]
        column.image(_enlarged(texels, 128), caption=f"{texture} pattern ({side}×{side} texels)")
    shown = max((len(e["rendered"]) for e in examples.values() if e), default=0)
    for view in range(shown):
        for column, texture in zip(st.columns(len(order)), order, strict=True):
            found = examples[texture]
            if not found or view >= len(found["rendered"]):
                continue
            image, best = _with_boxes(found, view)
            metrics = json.loads(textures[texture].metrics_json or "{}")
            column.image(
                image,
                caption=f"{texture}: best car score {fmt_number(best)} · "
                f"AP@0.5 {fmt_number(metrics.get('ap50'))}",
            )


def _with_boxes(found: dict[str, np.ndarray], view: int) -> tuple[Image.Image, float | None]:
    """The view's render enlarged, the true box in green and the detector's car boxes in red
    with their scores; and its best car score."""
    rendered = found["rendered"][view].transpose(1, 2, 0)
    scale = SHOWN_WIDTH / rendered.shape[1]
    image = _enlarged(rendered, SHOWN_WIDTH)
    draw = ImageDraw.Draw(image)
    truth = found["true_boxes"][view]
    if np.isfinite(truth).all():
        draw.rectangle(list(truth * scale), outline=(0, 220, 0), width=2)
    boxes, scores = found.get(f"boxes_{view}"), found.get(f"scores_{view}")
    if boxes is None or not len(scores):
        return image, None
    order = np.argsort(-scores)[:MOST_BOXES]
    for rank, index in enumerate(order):
        if rank and scores[index] < BOX_SCORE:
            break
        box = list(boxes[index] * scale)
        draw.rectangle(box, outline=(230, 30, 30), width=2)
        draw.text((box[0] + 2, box[1] + 2), f"{scores[index]:.2f}", fill=(230, 30, 30))
    return image, float(scores[order[0]])


def _dtn_pairs(root: Path, run: BenchRun, cells: list[tuple[BenchCell, dict]]) -> None:
    for cell, config in cells:
        found = _examples(root, run, cell)
        if not found:
            continue
        metrics = json.loads(cell.metrics_json or "{}")
        st.caption(
            f"{config['texture']} · {config['car']}: SSIM {fmt_number(metrics.get('ssim'))}, "
            f"PSNR {fmt_db(metrics.get('psnr'))}, ST-LPIPS {fmt_number(metrics.get('st_lpips'))}"
        )
        columns = st.columns(len(found["real"]))
        for index, column in enumerate(columns):
            pair = np.concatenate(
                [found["predicted"][index], found["real"][index]], axis=2
            ).transpose(1, 2, 0)
            column.image(
                _enlarged(pair, 2 * SHOWN_WIDTH),
                caption=f"PSNR {fmt_db(float(found['psnr'][index]))} · "
                f"ST-LPIPS {fmt_number(float(found['st_lpips'][index]))}",
            )


def _examples(root: Path, run: BenchRun, cell: BenchCell) -> dict[str, np.ndarray] | None:
    """The cell's examples file, read inside the viewer's root (None with a warning if not)."""
    if not cell.cell_dir:
        return None
    folder = cell.cell_dir if run.path == "." else f"{run.path}/{cell.cell_dir}"
    try:
        return load_file(str(resolve_inside(root, f"{folder}/{EXAMPLES_FILE}")))
    except (UnsafePathError, OSError) as error:
        st.warning(f"{folder}/{EXAMPLES_FILE} cannot be read: {error}")
        return None


def _enlarged(pixels: np.ndarray, width: int) -> Image.Image:
    """A (H, W, 3) uint8 image enlarged by whole pixels towards ``width``."""
    image = Image.fromarray(np.ascontiguousarray(pixels))
    scale = max(1, width // image.width)
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
