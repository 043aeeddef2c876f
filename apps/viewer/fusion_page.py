"""A fusion bench store's page: each model's accuracy against the perturbation's strength per
threat model, the report's tables, and clean / perturbed examples with each model's answer."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from apps.bench.kinds.fusion import EXAMPLES_FILE, model_rank
from apps.viewer.bench_page import report_section
from apps.viewer.paths import resolve_inside
from apps.viewer.records import BenchCell, BenchRun
from apps.viewer.widgets import fmt_db, fmt_number, metric_row

KIND = "fusion"
CURVES = (("fgsm", "transfer"), ("fgsm", "white-box"), ("pgd", "transfer"))
CURVES += (("pgd", "white-box"), ("blur", "none"))
STRENGTH_UNITS = {"fgsm": "ε (pixel scale)", "pgd": "ε (pixel scale)", "blur": "σ (pixels)"}


def shows(run: BenchRun) -> bool:
    """Whether a bench folder holds fusion cells (and nothing else): this page shows it."""
    return bool(run.cells) and all(_config(cell).get("kind") == KIND for cell in run.cells)


def fusion_frame(cells: tuple[BenchCell, ...]) -> pd.DataFrame:
    """One row per done fusion cell: model, attack, strength, threat, accuracy, clean accuracy,
    PSNR (dB), ST-LPIPS, the cell's folder."""
    rows = []
    for cell in cells:
        config = _config(cell)
        if cell.status != "done" or config.get("kind") != KIND:
            continue
        metrics = json.loads(cell.metrics_json or "{}")
        rows.append(
            {
                "model": cell.model,
                "attack": config["attack"],
                "strength": float(config["strength"]),
                "threat": config["threat"],
                "accuracy": cell.accuracy,
                "clean_accuracy": metrics.get("clean_accuracy"),
                "psnr": cell.psnr,
                "st_lpips": cell.st_lpips,
                "cell_dir": cell.cell_dir,
            }
        )
    columns = ["model", "attack", "strength", "threat", "accuracy", "clean_accuracy", "psnr"]
    frame = pd.DataFrame(rows, columns=[*columns, "st_lpips", "cell_dir"])
    return frame.sort_values("model", key=lambda names: names.map(model_rank), kind="stable")


def curve(frame: pd.DataFrame, attack: str, threat: str) -> pd.DataFrame:
    """Accuracy per strength (rows, clean at 0) and model (columns) for one attack and threat."""
    chosen = frame[(frame["attack"] == attack) & (frame["threat"] == threat)]
    clean = frame[frame["attack"] == "none"].assign(strength=0.0)
    both = pd.concat([clean, chosen]) if not chosen.empty else chosen
    if both.empty:
        return pd.DataFrame()
    return both.pivot_table(index="strength", columns="model", values="accuracy", sort=True)


def render(root: Path, run: BenchRun) -> None:
    """The whole page of one fusion bench folder."""
    st.title("Contextual fusion")
    st.caption(run.store)
    frame = fusion_frame(run.cells)
    failed = sum(cell.status == "failed" for cell in run.cells)
    metric_row(
        [
            ("cells", str(len(run.cells)), None),
            ("done", str(len(frame)), None),
            ("failed", str(failed), None),
            ("models", str(frame["model"].nunique()), None),
        ]
    )
    if frame.empty:
        st.info("No fusion cell is done yet.")
        return
    st.subheader("Accuracy against the perturbation's strength")
    columns = st.columns(2)
    shown = 0
    for attack, threat in CURVES:
        table = curve(frame, attack, threat)
        if table.empty or len(table) < 2:
            continue
        with columns[shown % 2]:
            st.caption(f"{attack}, {threat}: accuracy against {STRENGTH_UNITS[attack]}")
            st.line_chart(table, x_label=STRENGTH_UNITS[attack], y_label="accuracy")
        shown += 1
    st.subheader("Report")
    report_section(run)
    st.subheader("Examples")
    _examples(root, run, frame)


def _examples(root: Path, run: BenchRun, frame: pd.DataFrame) -> None:
    """Clean and perturbed images of one perturbation, each model's answer under it."""
    from safetensors.torch import load_file

    from fedsim.data import get_dataset_spec

    names = get_dataset_spec("cifar10").class_names
    options = frame.drop_duplicates(["attack", "strength", "threat"])
    labels = [f"{r.attack} {r.strength:g} {r.threat}" for r in options.itertuples()]
    picked = st.selectbox("perturbation", labels, key=f"{run.path}-fusion-perturbation")
    chosen = options.iloc[labels.index(picked)]
    same = frame[
        (frame["attack"] == chosen["attack"])
        & (frame["strength"] == chosen["strength"])
        & (frame["threat"] == chosen["threat"])
    ]
    first = True
    for row in same.itertuples():
        folder = row.cell_dir if run.path == "." else f"{run.path}/{row.cell_dir}"
        path = resolve_inside(root, f"{folder}/{EXAMPLES_FILE}")
        if not path.is_file():
            st.warning(f"{folder} holds no {EXAMPLES_FILE}")
            continue
        examples = load_file(str(path))
        truth = examples["labels"].tolist()
        if first:
            st.caption("clean (true class)")
            st.image(_images(examples["clean"]), caption=[names[t] for t in truth], width=72)
            first = False
        marks = [
            f"{names[p]} {'✓' if p == t else '✗'} · {fmt_db(q)} · {fmt_number(s)}"
            for p, t, q, s in zip(
                examples["predicted"].tolist(),
                truth,
                examples["psnr"].tolist(),
                examples["st_lpips"].tolist(),
                strict=True,
            )
        ]
        st.caption(f"{row.model}: prediction · PSNR · ST-LPIPS of the perturbed image")
        st.image(_images(examples["perturbed"]), caption=marks, width=72)


def _images(pixels: object) -> list:
    """uint8 [N, 3, H, W] → H×W×3 arrays for st.image."""
    return [image.permute(1, 2, 0).numpy() for image in pixels]


def _config(cell: BenchCell) -> dict:
    try:
        value = json.loads(cell.config_json or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
