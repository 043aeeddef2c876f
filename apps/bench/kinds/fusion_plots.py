"""The fusion suite's own figures, from its store's rows: each model's accuracy against how
visible the perturbation is (ST-LPIPS, PSNR), and the per-class fusion gain against the
context-only head's per-class accuracy (the paper's "context variability" claim), with
Pearson's r."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from apps.bench.kinds.fusion import model_rank

PANELS = (("transfer", ("fgsm", "pgd")), ("white-box", ("fgsm", "pgd")), ("none", ("blur",)))
MARKERS = {"fgsm": "o", "pgd": "s", "blur": "^"}
GAIN_FILE = "fusion-per-class-gain.json"


def fusion_records(rows: Iterable[Mapping[str, object]]) -> list[dict]:
    """Done fusion rows as flat records: config fields, accuracy, PSNR, ST-LPIPS, per class."""
    records = []
    for row in rows:
        config = json.loads(str(row.get("config_json") or "{}"))
        if row.get("status") != "done" or config.get("kind") != "fusion":
            continue
        metrics = json.loads(str(row.get("metrics_json") or "{}"))
        records.append(config | {k: metrics.get(k) for k in _METRIC_KEYS})
    return records


_METRIC_KEYS = (
    "accuracy",
    "clean_accuracy",
    "psnr",
    "st_lpips",
    "per_class_accuracy",
    "clean_per_class_accuracy",
)


def per_class_gain(records: list[dict], fused: str = "fused") -> dict[str, object] | None:
    """Per class: the fused model's accuracy minus the object model's, averaged over the
    transfer attacks and blurs, against the context model's clean per-class accuracy; with
    Pearson's r (None without the three models' cells)."""
    judged = [r for r in records if r["attack"] != "none" and r["threat"] in ("transfer", "none")]
    by_key = {(r["model"], r["perturbation"]): r for r in judged}
    pairs = [
        (by_key[fused, p]["per_class_accuracy"], by_key["object", p]["per_class_accuracy"])
        for (model, p) in by_key
        if model == "object" and (fused, p) in by_key
    ]
    context = next((r for r in records if r["model"] == "context" and r["attack"] == "none"), None)
    if not pairs or context is None:
        return None
    accuracy = _array(context["clean_per_class_accuracy"])
    with warnings.catch_warnings():
        # a class without images is NaN; constant values have no correlation (NaN as well)
        warnings.simplefilter("ignore", RuntimeWarning)
        gains = np.nanmean([_array(f) - _array(o) for f, o in pairs], axis=0)
        seen = np.isfinite(gains) & np.isfinite(accuracy)
        r = float(np.corrcoef(accuracy[seen], gains[seen])[0, 1]) if seen.sum() > 2 else math.nan
    return {
        "fused": fused,
        "perturbations": len(pairs),
        "context_clean_per_class_accuracy": _listed(accuracy),
        "per_class_gain": _listed(gains),
        "pearson_r": r if math.isfinite(r) else None,
    }


def _array(values: list[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=float)


def _listed(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values]


def write_fusion_plots(rows: Iterable[Mapping[str, object]], folder: Path) -> list[Path]:
    """``fusion-accuracy-vs-visibility.png`` and, with object, context and fused cells,
    ``fusion-per-class-gain.png`` for every fused model (its numbers in
    ``fusion-per-class-gain.json``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = fusion_records(rows)
    if not records:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    models = sorted({r["model"] for r in records}, key=model_rank)
    colours = {m: plt.get_cmap("tab10")(i) for i, m in enumerate(models)}
    figure, axes = plt.subplots(2, len(PANELS), figsize=(15, 8.5), squeeze=False)
    for column, (threat, attacks) in enumerate(PANELS):
        for line, (metric, label) in enumerate((("st_lpips", "ST-LPIPS"), ("psnr", "PSNR (dB)"))):
            ax = axes[line][column]
            for model in models:
                for attack in attacks:
                    points = sorted(
                        (r[metric], r["accuracy"])
                        for r in records
                        if r["model"] == model
                        and r["attack"] == attack
                        and r["threat"] == threat
                        and r[metric] is not None
                        and math.isfinite(r[metric])
                    )
                    if points:
                        ax.plot(
                            *zip(*points, strict=True),
                            marker=MARKERS[attack],
                            color=colours[model],
                            label=f"{model} {attack}",
                        )
            ax.set_xlabel(f"perturbation's median {label}")
            ax.set_ylabel("accuracy")
            name = "blur" if threat == "none" else f"{threat} FGSM (o) / PGD-10 (s)"
            ax.set_title(name)
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    by_label = dict(zip(labels, handles, strict=True))
    blur_handles, blur_labels = axes[0][2].get_legend_handles_labels()
    by_label |= dict(zip(blur_labels, blur_handles, strict=True))
    figure.legend(by_label.values(), by_label.keys(), loc="lower center", ncol=6, fontsize=8)
    figure.suptitle("contextual fusion: accuracy against how visible the perturbation is")
    figure.tight_layout(rect=(0, 0.08, 1, 0.96))
    written = [_save(figure, folder / "fusion-accuracy-vs-visibility.png")]
    fused_models = [m for m in models if m.startswith("fused")]
    gains = [g for g in (per_class_gain(records, m) for m in fused_models) if g is not None]
    if gains:
        from fedsim.data import get_dataset_spec

        names = get_dataset_spec("cifar10").class_names
        figure, ax = plt.subplots(figsize=(7, 5.5))
        for gain in gains:
            points = [
                (name, xi, yi)
                for name, xi, yi in zip(
                    names,
                    gain["context_clean_per_class_accuracy"],
                    gain["per_class_gain"],
                    strict=True,
                )
                if xi is not None and yi is not None
            ]
            ax.scatter(
                [p[1] for p in points],
                [p[2] for p in points],
                color=colours[gain["fused"]],
                label=f"{gain['fused']}: Pearson r = {_r(gain['pearson_r'])}",
            )
            if gain is gains[0]:
                for name, xi, yi in points:
                    ax.annotate(
                        name, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points"
                    )
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xlabel("context-only head's clean accuracy, per class")
        ax.set_ylabel("fused − object accuracy, per class")
        ax.set_title(
            f"per-class fusion gain, mean over {gains[0]['perturbations']} transfer attacks "
            "and blurs",
            fontsize=10,
        )
        ax.legend(fontsize=8)
        written.append(_save(figure, folder / "fusion-per-class-gain.png"))
        (folder / GAIN_FILE).write_text(json.dumps(gains, indent=2) + "\n")
    return written


def _r(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _save(figure: object, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=64)
    plt.close(figure)
    return path
