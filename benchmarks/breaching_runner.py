"""Run breaching's reference Inverting Gradients on a fedleak model, gradient and labels.

Run with the breaching venv (made by breaching_env.sh), never with fedleak's own::

    benchmarks/.venv-breaching/bin/python benchmarks/breaching_runner.py request.json

The request (JSON) names:
    model_file     safetensors state dict of the model the client received
    model_name, num_classes, image_shape [C, H, W], dropout (optional, default 0.0)
                   the fedsim.models ModelSpec that rebuilds it
    train_mode     whether the client computed its gradient in training mode
    gradient_file  safetensors, one tensor per name of model.named_parameters()
    labels         the client's labels, one int per image, given to the attacker
    mean, std      per-channel normalisation of the images the model sees
    iterations     breaching's attack.optim.max_iterations
    time_budget_s  optional; recorded only, since breaching's loop has no time limit
    seed, restarts breaching's attack.restarts.num_trials
    out            folder for reconstruction.safetensors and stats.json

reconstruction.safetensors holds ``images`` [N, C, H, W] in normalised space, row i for
labels[i], and ``labels``. stats.json holds the attack's wall time, iterations done, versions and
breaching's resolved attack config. Only torch, breaching and fedsim.models (torch only) load.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

REPO_ROOT = Path(__file__).resolve().parents[1]
ATTACK = "invertinggradients"


@dataclass(frozen=True)
class Request:
    """One breaching attack on one observed gradient."""

    model_file: str
    model_name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    train_mode: bool
    gradient_file: str
    labels: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    iterations: int
    seed: int
    restarts: int
    out: str
    time_budget_s: float | None = None
    dropout: float = 0.0


def read_request(path: Path) -> Request:
    """Read and check a request JSON file; exit with one line on a bad request."""
    raw = json.loads(path.read_text())
    try:
        request = Request(
            model_file=str(raw["model_file"]),
            model_name=str(raw["model_name"]),
            num_classes=int(raw["num_classes"]),
            image_shape=tuple(int(v) for v in raw["image_shape"]),
            train_mode=bool(raw["train_mode"]),
            gradient_file=str(raw["gradient_file"]),
            labels=tuple(int(v) for v in raw["labels"]),
            mean=tuple(float(v) for v in raw["mean"]),
            std=tuple(float(v) for v in raw["std"]),
            iterations=int(raw["iterations"]),
            seed=int(raw["seed"]),
            restarts=int(raw["restarts"]),
            out=str(raw["out"]),
            time_budget_s=None if raw.get("time_budget_s") is None else float(raw["time_budget_s"]),
            dropout=float(raw.get("dropout", 0.0)),
        )
    except KeyError as missing:
        sys.exit(f"breaching_runner: request {path} lacks {missing}")
    channels = request.image_shape[0]
    if len(request.image_shape) != 3 or not len(request.mean) == len(request.std) == channels:
        sys.exit("breaching_runner: image_shape must be [C, H, W] with C values in mean and std")
    if not request.labels or request.iterations < 1 or request.restarts < 1:
        sys.exit("breaching_runner: labels must be non-empty, iterations and restarts at least 1")
    return request


def build_victim_model(request: Request) -> torch.nn.Module:
    """Rebuild the fedsim model and load its state (float32, CPU, requested train/eval mode)."""
    sys.path.insert(0, str(REPO_ROOT))
    from fedsim.models import ModelSpec, build_model

    spec = ModelSpec(request.model_name, request.num_classes, request.image_shape, request.dropout)
    model = build_model(spec)
    model.load_state_dict(load_file(request.model_file), strict=True)
    return model.to(device="cpu", dtype=torch.float32).train(request.train_mode)


def read_gradient(path: str, model: torch.nn.Module) -> list[torch.Tensor]:
    """Return the observed gradient as a list in model.parameters() order, as breaching wants."""
    by_name = load_file(path)
    names = [name for name, _ in model.named_parameters()]
    if set(by_name) != set(names):
        missing, extra = sorted(set(names) - set(by_name)), sorted(set(by_name) - set(names))
        sys.exit(f"breaching_runner: gradient names differ; missing {missing}, extra {extra}")
    return [by_name[name].to(torch.float32) for name in names]


def repo_commit() -> str | None:
    """Return the fedleak git commit the run used, or None outside a git checkout."""
    git = ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"]
    result = subprocess.run(git, capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def breaching_config(iterations: int, restarts: int) -> Any:
    """Compose breaching's own invertinggradients config, changing only iterations and restarts."""
    import breaching

    overrides = [
        f"attack={ATTACK}",
        f"attack.optim.max_iterations={iterations}",
        f"attack.restarts.num_trials={restarts}",
    ]
    # get_config prints the (unused) case name; keep stdout for our own summary line.
    with contextlib.redirect_stdout(sys.stderr):
        return breaching.get_config(overrides=overrides)


def attack(request: Request) -> dict[str, Any]:
    """Run breaching's attack on the request, write the reconstruction and return the stats."""
    import breaching
    from omegaconf import OmegaConf

    torch.set_num_threads(os.cpu_count() or 1)
    model = build_victim_model(request)
    gradient = read_gradient(request.gradient_file, model)
    cfg = breaching_config(request.iterations, request.restarts)
    data_cfg = OmegaConf.create(
        dict(
            modality="vision",
            task="classification",
            classes=request.num_classes,
            shape=list(request.image_shape),
            normalize=True,
            mean=list(request.mean),
            std=list(request.std),
        )
    )
    setup = dict(device=torch.device("cpu"), dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss()  # what breaching's own cases use for vision
    attacker = breaching.attacks.prepare_attack(model, loss_fn, cfg.attack, setup)
    # breaching picks the mode from the buffers it is given: any list (even empty) means eval
    # with those running statistics; None in both places means train mode with batch statistics.
    buffers = None if request.train_mode else [b.detach() for b in model.buffers()]
    server_payload = dict(
        parameters=[p.detach() for p in model.parameters()], buffers=buffers, metadata=data_cfg
    )
    labels = torch.tensor(request.labels, dtype=torch.long)
    shared_data = dict(
        gradients=gradient,
        buffers=None,
        metadata=dict(num_data_points=len(labels), labels=labels, local_hyperparams=None),
    )

    torch.manual_seed(request.seed)
    start = time.perf_counter()
    reconstruction, trial_stats = attacker.reconstruct(
        [server_payload], [shared_data], {}, dryrun=False
    )
    wall_s = time.perf_counter() - start
    budget = request.time_budget_s

    out = Path(request.out)
    out.mkdir(parents=True, exist_ok=True)
    images = reconstruction["data"].detach().to(torch.float32).contiguous()
    save_file(
        {"images": images, "labels": reconstruction["labels"].to(torch.long).contiguous()},
        str(out / "reconstruction.safetensors"),
    )
    iterations = [len(trial_stats[f"Trial_{t}_Val"]) for t in range(request.restarts)]
    stats = dict(
        attack=f"breaching/{ATTACK}",
        wall_s=wall_s,
        iterations_per_restart=iterations,
        iterations_done=sum(iterations),
        seconds_per_iteration=wall_s / max(sum(iterations), 1),
        time_budget_s=budget,
        time_budget_exceeded=None if budget is None else wall_s > budget,
        final_objective_per_restart=[
            trial_stats[f"Trial_{t}_Val"][-1] if trial_stats[f"Trial_{t}_Val"] else None
            for t in range(request.restarts)
        ],
        selected_score=trial_stats.get("opt_value"),
        model_training_during_attack=attacker._rec_models[0].training,
        torch_threads=torch.get_num_threads(),
        versions={name: metadata.version(name) for name in ("breaching", "torch", "hydra-core")},
        python=platform.python_version(),
        fedleak_commit=repo_commit(),
        request=asdict(request),
        breaching_attack_config=OmegaConf.to_container(cfg.attack, resolve=True),
        breaching_data_config=OmegaConf.to_container(data_cfg, resolve=True),
    )
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def main() -> None:
    """Read the request named by argv[1], attack, and print one summary line."""
    if len(sys.argv) != 2:
        sys.exit("usage: breaching_runner.py REQUEST.json")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    # breaching 0.1.2 predates these deprecations; they say nothing about this run.
    warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated")
    warnings.filterwarnings("ignore", message=r"\s*The version_base parameter is not specified")
    stats = attack(read_request(Path(sys.argv[1])))
    print(
        f"breaching {ATTACK}: {stats['iterations_done']} iterations in {stats['wall_s']:.1f} s "
        f"({stats['seconds_per_iteration'] * 1e3:.1f} ms/it) -> {stats['request']['out']}"
    )


if __name__ == "__main__":
    main()
