"""The ``fusion`` cell kind: one benchmarked fusion model's accuracy on held-out CIFAR-10 test
images, clean and under one perturbation, with how visible the perturbation is::

    [[grid]]
    kind = "fusion"
    model = ["object", "context", "fused", "fused-alpha-0.1", "fused-flower"]
    perturbation = ["none", "fgsm:eps=4/255", "pgd:eps=8/255,steps=10", "blur:sigma=1"]
    threat = ["transfer", "white-box"]
    images = [2000]

A model is a head of a heads file in ``checkpoint`` (default: the shipped folder), see
:func:`apps.fusion_eval.model_heads`. ``transfer`` crafts FGSM / PGD on the object head of the
α = 0 heads (the attacker's model), ``white-box`` on the model evaluated; ``none`` and blur
are crafted on nothing, so their cells have threat ``none`` whatever the grid says.

Cells that perturb the same images the same way (every transfer cell of one perturbation,
and the object model's white-box cell) share one crafted set in the campaign's cache folder.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from apps.bench.kinds.base import CellKind, KindCell, KindGrid
from fedsim.errors import UserInputError

THREATS = ("transfer", "white-box")
EXAMPLES = 8
"""Images per cell kept for the viewer (clean, perturbed, labels, predictions)."""
EXAMPLES_FILE = "examples.safetensors"
TRANSFER_SOURCE = "object"
"""The model transfer attacks are crafted on."""
DATASET = "cifar10"


class FusionCell(KindCell):
    """One fusion model under one perturbation and threat model on ``images`` test images."""

    kind: Literal["fusion"] = "fusion"
    model: str
    perturbation: str = Field(description="canonical spec, as str(Perturbation) writes it")
    attack: Literal["none", "fgsm", "pgd", "blur"]
    strength: float = Field(description="ε (L∞, [0, 1] pixel scale) or blur σ (pixels); 0: none")
    threat: Literal["transfer", "white-box", "none"]
    images: int
    seed: int
    batch_size: int
    checkpoint: str | None
    device: Literal["auto", "cpu", "cuda"]

    def label(self) -> str:
        """model / perturbation / threat and the image count."""
        return f"fusion {self.model} {self.perturbation} {self.threat} ({self.images} images)"

    def store_fields(self) -> dict[str, object]:
        """The store's columns: the model, the perturbation's kind; no defense or batch."""
        return {
            "dataset": DATASET,
            "model": self.model,
            "attack": self.attack,
            "defense": None,
            "batch_size": self.batch_size,
            "images": self.images,
            "seed": self.seed,
        }

    def crafted_on(self) -> str | None:
        """The model FGSM / PGD are crafted on (None: nothing is crafted)."""
        if self.threat == "none":
            return None
        return TRANSFER_SOURCE if self.threat == "transfer" else self.model

    def run(self, folder: Path, cache: Path | None) -> dict[str, Any]:
        """Perturb (or read the shared set), score the model's head clean and perturbed, and
        write ``metrics.json``, ``config.json`` and the viewer's examples into ``folder``."""
        import torch
        from safetensors.torch import save_file

        from apps.fusion_eval import held_out_images, model_heads, per_class
        from apps.report import CONFIG_FILE, METRICS_FILE
        from fedsim.device import resolve_device
        from fedsim.storage import write_json

        started = time.perf_counter()
        device = resolve_device(self.device)
        heads_file, head = model_heads(self.model)
        clean, labels = held_out_images(self.images, self.seed)
        made, visibility, crafted = self._perturbed(clean, labels, device, cache)
        crafted_s = time.perf_counter() - started if crafted else 0.0
        clean_key = self._set_key("none", None)
        clean_hits = self._predicted(clean, clean_key, heads_file, device, cache)[head] == labels
        own_key = self._set_key(self.perturbation, self.crafted_on())
        predicted = self._predicted(made, own_key, heads_file, device, cache)[head]
        hits = predicted == labels
        classes = 10
        metrics = {
            "accuracy": float(hits.float().mean()),
            "clean_accuracy": float(clean_hits.float().mean()),
            "per_class_accuracy": per_class(hits, labels, classes),
            "clean_per_class_accuracy": per_class(clean_hits, labels, classes),
            **visibility["medians"],
            "images": len(labels),
            "heads_file": heads_file,
            "head": head,
            "crafted_on": self.crafted_on(),
            "crafted_s": round(crafted_s, 2),
            "device": str(device),
            "wall_s": round(time.perf_counter() - started, 2),
        }
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / CONFIG_FILE, json.loads(self.config_json()))
        shown = slice(0, EXAMPLES)
        examples = {
            "clean": _pixels(clean[shown]),
            "perturbed": _pixels(made[shown]),
            "labels": labels[shown].contiguous(),
            "predicted": predicted[shown].contiguous(),
            "psnr": torch.tensor(visibility["psnr"][:EXAMPLES]),
            "st_lpips": torch.tensor(visibility["st_lpips"][:EXAMPLES]),
        }
        save_file(examples, str(folder / EXAMPLES_FILE))
        write_json(folder / METRICS_FILE, metrics)
        return metrics

    def _checkpoint(self) -> Path:
        from fedsim.models.fusion import SHIPPED_CHECKPOINTS

        return SHIPPED_CHECKPOINTS if self.checkpoint is None else Path(self.checkpoint)

    def _set_key(self, perturbation: str, crafted_on: str | None) -> dict[str, object]:
        """What names a set of images: the same key, the same pixels."""
        return {
            "checkpoint": str(self._checkpoint().resolve()),
            "crafted_on": crafted_on,
            "perturbation": perturbation,
            "images": self.images,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "device": self.device,
        }

    def _perturbed(self, clean: Any, labels: Any, device: Any, cache: Path | None) -> tuple:
        """The perturbed images, their visibility (medians and per-image PSNR / ST-LPIPS) and
        whether they were crafted here (else read from ``cache``)."""
        from apps.fusion_eval import craft, model_heads, visibility
        from attacks.evasion import parse_perturbation
        from fedsim.models.fusion import HeadClassifier

        def make() -> tuple[dict[str, Any], dict[str, Any]]:
            source, classifier = self.crafted_on(), None
            if source is not None:
                heads_file, head = model_heads(source)
                crafted = _load(self._checkpoint(), heads_file).to(device)
                classifier = HeadClassifier(crafted, head).eval()
            perturbation = parse_perturbation(self.perturbation)
            made = craft(
                perturbation, clean, labels, classifier, device, self.batch_size, self.seed
            )
            medians, values = visibility(made, clean, self.batch_size)
            found = {"medians": medians, "psnr": values["psnr"], "st_lpips": values["st_lpips"]}
            return {"perturbed": made.contiguous()}, found

        key = self._set_key(self.perturbation, self.crafted_on())
        tensors, found, crafted = _shared(cache, "perturbed", key, make)
        return tensors["perturbed"], found, crafted

    def _predicted(
        self, images: Any, key: dict, heads_file: str, device: Any, cache: Path | None
    ) -> dict[str, Any]:
        """Every head's predictions (of ``heads_file``) for the image set named by ``key``."""
        from apps.fusion_eval import predictions

        def make() -> tuple[dict[str, Any], dict[str, Any]]:
            model = _load(self._checkpoint(), heads_file).to(device)
            return predictions(model, images, device, self.batch_size), {}

        tensors, _, _ = _shared(cache, "predictions", key | {"heads_file": heads_file}, make)
        return tensors


def _shared(
    cache: Path | None,
    group: str,
    key: dict[str, object],
    make: Callable[[], tuple[dict[str, Any], dict[str, Any]]],
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """Tensors and JSON named by ``key`` in ``cache/fusion/group``: made once by ``make`` while
    the others wait on its lock, then read. Returns them and whether they were made here."""
    import fcntl

    from safetensors.torch import load_file, save_file

    if cache is None:
        return (*make(), True)
    folder = cache / "fusion" / group
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = folder / f"{name}.safetensors"
    with (folder / f"{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if path.is_file():
            return load_file(str(path)), json.loads(path.with_suffix(".json").read_text()), False
        tensors, found = make()
        path.with_suffix(".json").write_text(json.dumps({**found, "key": key}))
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp))
        tmp.replace(path)
    return tensors, found, True


class FusionGrid(KindGrid):
    """The axes of a fusion grid; the cells are their product."""

    kind: Literal["fusion"]
    model: tuple[str, ...] = Field(min_length=1)
    perturbation: tuple[str, ...] = Field(min_length=1)
    threat: tuple[Literal["transfer", "white-box"], ...] = Field(("transfer",), min_length=1)
    images: tuple[int, ...] = Field((2000,), min_length=1)
    seed: tuple[int, ...] = Field((0,), min_length=1)
    batch_size: int = Field(250, ge=1, description="images per crafted / scored batch")
    checkpoint: str | None = Field(None, description="trunks and heads folder (default: shipped)")
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @field_validator("model", "perturbation", "threat", "images", "seed", mode="before")
    @classmethod
    def _one_value_is_a_list(cls, value: Any) -> Any:
        return value if isinstance(value, list | tuple) else [value]

    @field_validator("model")
    @classmethod
    def _known_models(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from apps.fusion_eval import model_heads

        for name in names:
            try:
                model_heads(name)
            except UserInputError as error:
                raise ValueError(str(error)) from None
        return names

    @field_validator("perturbation")
    @classmethod
    def _canonical_perturbations(cls, specs: tuple[str, ...]) -> tuple[str, ...]:
        from attacks.evasion import parse_perturbation

        try:
            return tuple(str(parse_perturbation(spec)) for spec in specs)
        except UserInputError as error:
            raise ValueError(str(error)) from None

    @field_validator("images")
    @classmethod
    def _positive(cls, counts: tuple[int, ...]) -> tuple[int, ...]:
        bad = [count for count in counts if not 1 <= count <= 10_000]
        if bad:
            raise ValueError(f"invalid images {bad[0]}; valid: 1 to 10000 (the test split)")
        return counts

    def cells(self) -> list[KindCell]:
        """model × perturbation × threat × images × seed, threat ``none`` without crafting."""
        from attacks.evasion import parse_perturbation

        cells: dict[str, KindCell] = {}
        for spec in self.perturbation:
            parsed = parse_perturbation(spec)
            threats = self.threat if parsed.needs_gradients else ("none",)
            strength = parsed.sigma if parsed.kind == "blur" else parsed.eps
            axes = itertools.product(self.model, threats, self.images, self.seed)
            for model, threat, images, seed in axes:
                cell = FusionCell(
                    model=model,
                    perturbation=spec,
                    attack=parsed.kind,
                    strength=strength,
                    threat=threat,
                    images=images,
                    seed=seed,
                    batch_size=self.batch_size,
                    checkpoint=self.checkpoint,
                    device=self.device,
                )
                cells.setdefault(cell.cell_id, cell)
        return list(cells.values())


def _load(checkpoint: Path, heads_file: str) -> Any:
    from fedsim.models.fusion import load_fusion

    return load_fusion(checkpoint, heads_file=heads_file)


def _pixels(images: Any) -> Any:
    """[0, 1] images as uint8 (what the viewer shows)."""
    import torch

    return (images * 255).round().to(torch.uint8).contiguous()


def model_rank(name: str) -> tuple[int, str]:
    """Sort key of fusion models: object, context, fused, then the other fused heads by name."""
    order = ("object", "context", "fused")
    return (order.index(name), "") if name in order else (len(order), name)


def _plots(rows: Iterable[Mapping[str, object]], folder: Path) -> list[Path]:
    from apps.bench.kinds.fusion_plots import write_fusion_plots

    return write_fusion_plots(rows, folder)


FUSION = CellKind(
    name="fusion",
    grid=FusionGrid,
    key_fields=("model", "perturbation", "attack", "strength", "threat", "images", "seed"),
    metrics=("accuracy", "clean_accuracy", "psnr", "ssim", "st_lpips", "lpips", "crafted_s"),
    plots=_plots,
)
