"""Which defense stops gradient inversion, and at what cost in accuracy: the privacy–utility map.

    .venv/bin/python benchmarks/privacy_utility.py [--images 4] [--iterations 1000]
        [--rounds 3] [--workers 2] [--only clip,dp-sgd] [--results benchmarks/results]

Leakage: each defense at three strengths on the FedSGD gradient of one CIFAR-10 test image
(batch 1, fresh model; the server's best case), attacked by Inverting Gradients (cosine, TV,
signed Adam; ``--iterations`` steps); DIA for dropout. Scored against the random-guess
baseline, the PSNR of a uniform-noise image against each original. ``secagg`` is attacked
where it applies: the securely aggregated round-1 update of 8 clients × 1 image (a Flower run).

Utility: a Flower run per defense and strength on CIFAR-10 (Dirichlet α = 0.5, 8 clients,
``--rounds`` rounds of one local epoch in batches of 32, SGD lr 0.05), its final test accuracy
on 2,000 test images, and for DP-SGD the largest client ε (δ = 1e-5) after the last round.
The model is the MLP (three 512-unit GELU layers with dropout layers, 2.1 M parameters): undefended
IG recovers its images almost exactly (≈ 78 dB), so every dB a defense takes off shows. (IG
on LeNet reaches only ≈ 11 dB undefended at this budget, 3 dB above the random guess: no map.)

Per-cell results are appended to ``--results``/privacy_utility_{leakage,utility}.jsonl as they
finish, so a killed run resumes. Prints a table, a JSON line per row and one JSON line last,
and writes the leakage-vs-accuracy plot to ``--results``/privacy_utility.png.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

import torch
from cells import RESULTS_DIR, image_indices, medians, psnr_cell, run_cells, scores_of

GRID: dict[str, list[str]] = {
    "none": ["none"],
    "clip": ["clip:max_norm=1", "clip:max_norm=0.1", "clip:max_norm=0.01"],
    "gaussian": ["gaussian:std=0.001", "gaussian:std=0.01", "gaussian:std=0.1"],
    "prune": ["prune:fraction=0.5", "prune:fraction=0.9", "prune:fraction=0.99"],
    "quantize": ["quantize:bits=8", "quantize:bits=4", "quantize:bits=1"],
    "dp-sgd": [
        "dp-sgd:noise_multiplier=0.01,max_grad_norm=1",
        "dp-sgd:noise_multiplier=0.1,max_grad_norm=1",
        "dp-sgd:noise_multiplier=1,max_grad_norm=1",
    ],
    "dropout": ["dropout:p=0.1", "dropout:p=0.25", "dropout:p=0.5"],
    "secagg": ["secagg"],
}
DATASET, MODEL, CLIENTS, PARTITION, BATCH, LR = "cifar10", "mlp", 8, "dirichlet:0.5", 32, 0.05
TEST_IMAGES = 2000


def leakage_cell(cell: dict) -> dict:
    """Attack one image's FedSGD gradient under one defense; scores and the random guess."""
    torch.set_num_threads(1)  # one core per worker: the cells run side by side
    from torchmetrics.functional.image import peak_signal_noise_ratio

    from attacks import GradientInversion, get_preset
    from defenses.fedsgd import defend_gradient, defended_model_spec
    from defenses.specs import parse_defenses
    from fedsim.data import load_dataset, normalize
    from fedsim.fedsgd import fedsgd_observation
    from fedsim.models import ModelSpec, build_model

    data = load_dataset(DATASET, "test")
    images, labels = data.images([cell["index"]])
    torch.manual_seed(cell["index"])
    specs = parse_defenses([] if cell["defense"] == "none" else [cell["defense"]], "attack")
    base = ModelSpec(cell["model"], data.spec.num_classes, data.spec.image_shape)
    spec = defended_model_spec(base, specs)
    model = build_model(spec)
    observation, truth = fedsgd_observation(model, spec, data.spec, images, labels)
    inputs = normalize(images, data.spec)
    observation = defend_gradient(
        observation, model, inputs, labels, truth.dropout_masks, specs, cell["index"]
    )
    attack = "dia" if spec.dropout > 0 else "ig"
    config = get_preset(attack, iterations=cell["iterations"])
    reconstruction = GradientInversion(config, seed=cell["index"])(observation)
    guess = torch.rand(images.shape, generator=torch.Generator().manual_seed(cell["index"]))
    random_psnr = float(peak_signal_noise_ratio(guess, images, data_range=1.0))
    return {
        **cell,
        "epsilon_one_step": observation.context.get("dp-epsilon"),
        "attacks": {attack: {**scores_of(reconstruction, truth), "random_psnr": random_psnr}},
    }


def utility_cell(cell: dict) -> dict:
    """A Flower run under one defense: final test accuracy and the largest client ε."""
    from defenses.flower_run import defend_run
    from fedsim.flower.simulation import SimulationConfig, run_simulation

    out = Path(tempfile.mkdtemp(prefix="privacy-utility-"))
    try:
        secure = cell["defense"] == "secagg"
        config = SimulationConfig(
            dataset=DATASET,
            model=cell["model"],
            clients=CLIENTS,
            rounds=cell["rounds"],
            local_epochs=1,
            batch_size=BATCH,
            lr=LR,
            partition=PARTITION,
            test_images=TEST_IMAGES,
            defenses=() if cell["defense"] == "none" else (cell["defense"],),
            out_dir=out / "run",
        )
        summary = run_simulation(config, defend=defend_run)
        privacy = out / "run" / "privacy.json"
        epsilon = json.loads(privacy.read_text())["epsilon"][-1] if privacy.is_file() else None
        row = {**cell, "accuracy": summary.accuracy[-1], "epsilon": epsilon}
        row["wall_s"] = summary.wall_s
        if secure:
            row["aggregate_attack"] = _attack_secure_aggregate(cell, out)
        return row
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _attack_secure_aggregate(cell: dict, out: Path) -> dict:
    """IG on round 1's secure aggregate of 8 clients × 1 image × 1 step, scored against all 8."""
    from apps.attack_run import CaptureAttackRequest, run_capture_attack
    from defenses.flower_run import defend_run
    from fedsim.flower.simulation import SimulationConfig, run_simulation

    config = SimulationConfig(
        dataset=DATASET,
        model=cell["model"],
        clients=CLIENTS,
        rounds=1,
        batch_size=1,
        lr=LR,
        partition=PARTITION,
        test_images=100,
        defenses=("secagg",),
        out_dir=out / "fedsgd",
    )
    run_simulation(config, defend=defend_run)
    request = CaptureAttackRequest(
        run=out / "fedsgd",
        round=1,
        attack="ig",
        iterations=cell["iterations"],
        out=out / "attack",
    )
    metrics = run_capture_attack(request)
    return {key: metrics[key] for key in ("psnr", "ssim", "lpips", "st_lpips", "label_accuracy")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default=",".join(GRID))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()

    families = args.only.split(",")
    unknown = sorted(set(families) - set(GRID))
    if unknown:
        parser.error(f"unknown --only {unknown[0]!r}; valid: {', '.join(GRID)}")
    points = [(f, d, MODEL) for f in families for d in GRID[f]]
    indices = image_indices(DATASET, args.images, args.seed)
    leak_cells = [
        {"family": f, "defense": d, "model": m, "index": i, "iterations": args.iterations}
        for f, d, m in points
        if d != "secagg"
        for i in indices
    ]
    use_cells = [
        {
            "family": f,
            "defense": d,
            "model": m,
            "rounds": args.rounds,
            "iterations": args.iterations,
        }
        for f, d, m in points
    ]
    leaks = run_cells(
        leak_cells,
        leakage_cell,
        lambda c: (c["defense"], c["model"], c["index"], c["iterations"]),
        args.results / "privacy_utility_leakage.jsonl",
        args.workers,
    )
    uses = run_cells(
        use_cells,
        utility_cell,
        lambda c: (c["defense"], c["model"], c["rounds"]),
        args.results / "privacy_utility_utility.jsonl",
        1,  # Ray already spreads one run's clients over every core
    )

    table = []
    for family, defense, model in points:
        use = uses[(defense, model, args.rounds)]
        row = {"family": family, "defense": defense, "model": model}
        row |= {"accuracy": use["accuracy"], "epsilon": use["epsilon"]}
        if defense == "secagg":
            row |= {"attack": "ig", **use["aggregate_attack"], "attacked": "8-client aggregate"}
        else:
            per_image = [leaks[(defense, model, i, args.iterations)] for i in indices]
            attack = next(iter(per_image[0]["attacks"]))
            scores = [r["attacks"][attack] for r in per_image]
            row |= {"attack": attack, **medians(scores), "attacked": "1-image gradient"}
            row["random_psnr"] = statistics.median(s["random_psnr"] for s in scores)
        table.append(row)
        print(json.dumps(row, allow_nan=False))
    random_psnr = statistics.median(r["random_psnr"] for r in table if "random_psnr" in r)
    stopping = [
        r
        for r in table
        if r["family"] == "dp-sgd" and r["psnr"] is not None and r["psnr"] <= random_psnr + 2
    ]
    print(f"random-guess PSNR {random_psnr:.1f} dB (uniform noise vs the originals)")
    print("defense                                     model  attack | PSNR  ST-LPIPS | acc    ε")
    for r in table:
        eps = "" if r["epsilon"] is None else f"{r['epsilon']:.3g}"
        print(
            f"{r['defense']:43} {r['model']:6} {r['attack']:6} | {psnr_cell(r['psnr'])} "
            f"{r['st_lpips']:.3f}    | {r['accuracy']:.3f} {eps}"
        )
    plot(table, random_psnr, args.results / "privacy_utility.png")
    goal = stopping[0] if stopping else None
    print(
        json.dumps(
            {
                "rows": table,
                "random_psnr": random_psnr,
                "dp_sgd_stops_ig": goal,
                "goal_met": goal is not None,
                "images": args.images,
                "iterations": args.iterations,
                "rounds": args.rounds,
            },
            allow_nan=False,
        )
    )


def plot(table: list[dict], random_psnr: float, path: Path) -> None:
    """Leakage (IG/DIA median PSNR) against final accuracy, one colour per defense family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5.5))
    for family in dict.fromkeys(r["family"] for r in table):
        rows = [r for r in table if r["family"] == family]
        psnr = [50.0 if r["psnr"] is None else r["psnr"] for r in rows]
        axes.plot([r["accuracy"] for r in rows], psnr, "o-", label=family)
        for r, y in zip(rows, psnr, strict=True):
            label = r["defense"].split(":")[-1].replace(",max_grad_norm=1", "")
            axes.annotate(
                label, (r["accuracy"], y), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
    axes.axhline(random_psnr, color="grey", linestyle="--", label="random guess")
    axes.axhline(random_psnr + 2, color="grey", linestyle=":", label="random guess + 2 dB")
    axes.set_xlabel(f"final test accuracy (CIFAR-10, {CLIENTS} clients, Dirichlet 0.5)")
    axes.set_ylabel("attack median PSNR (dB)")
    axes.set_title("privacy–utility: which defense stops gradient inversion, at what cost")
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    print(f"plot → {path}")


if __name__ == "__main__":
    main()
