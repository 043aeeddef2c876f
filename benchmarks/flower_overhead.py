"""Flower's simulation engine vs a plain PyTorch loop doing the same federated work.

    .venv/bin/python benchmarks/flower_overhead.py [--clients 8] [--rounds 3] [--model lenet]
        [--dataset cifar10] [--batch-size 4] [--local-steps 1] [--repeats 3]

Both run the same clients on the same partitions and batches, capture every update as an
Observation and every batch as GroundTruth, average with FedAvg and measure global accuracy.
The plain loop trains the clients one after another in this process. Each path's time splits
into set-up (to the end of round 1, less one steady round: Ray's start and the actors' data
loading for Flower) and the steady seconds per round; ``round_ratio`` compares those, Ray's
start-up apart. Goal: round_ratio ≤ 1.5 at 8 clients × 3 rounds.
Prints a table and one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch

from fedsim.flower.capture import ObservationRecorder
from fedsim.flower.config import SimulationConfig
from fedsim.flower.evaluation import GlobalEvaluator
from fedsim.flower.local_training import dropout_seed, step_indices, train_steps
from fedsim.flower.run_dir import ground_truth_path
from fedsim.flower.simulation import run_simulation
from fedsim.ground_truth import GroundTruth
from fedsim.models import build_model
from fedsim.provenance import provenance, seed_everything


def plain_loop(config: SimulationConfig) -> dict[str, float]:
    """The same rounds without Flower: clients in sequence, FedAvg by hand; timings."""
    start = time.perf_counter()
    marks: list[float] = []
    seed_everything(config.seed)
    data, partitions = config.train_data(), config.partitions()
    global_model = build_model(config.model_spec())
    names = tuple(name for name, _ in global_model.named_parameters())
    recorder = ObservationRecorder.for_run(config, names)
    evaluator = GlobalEvaluator(
        build_model(config.model_spec()), config.dataset_spec(), config.test_images
    )
    client_model = build_model(config.model_spec())
    state = {k: v.clone() for k, v in global_model.state_dict().items()}
    evaluator.accuracy(state)
    for server_round in range(1, config.rounds + 1):
        returned = []
        for client in range(config.clients):
            steps = step_indices(
                partitions[client],
                local_steps=config.local_steps,
                batch_size=config.batch_size,
                seed=config.seed,
                server_round=server_round,
                partition_id=client,
                local_epochs=config.local_epochs,
            )
            batches = [data.images(indices) for indices in steps]
            client_model.load_state_dict(state)
            torch.manual_seed(dropout_seed(config.seed, server_round, client))
            train_steps(
                client_model,
                batches,
                data.spec,
                lr=config.lr,
                train_mode=config.train_mode,
                optimizer=config.optimizer,
                momentum=config.momentum,
                weight_decay=config.weight_decay,
            )
            GroundTruth(
                torch.cat([b[0] for b in batches]),
                torch.cat([b[1] for b in batches]),
                tuple(i for indices in steps for i in indices),
            ).save(ground_truth_path(config.out_dir, server_round, client))
            new_state = {k: v.detach().clone() for k, v in client_model.state_dict().items()}
            examples = len(steps) * config.batch_size
            recorder.record(server_round, client, state, new_state, examples)
            returned.append(new_state)
        state = {
            k: torch.stack([s[k].double() for s in returned]).mean(0).to(state[k].dtype)
            for k in state
        }
        evaluator.accuracy(state)
        marks.append(time.perf_counter())
    return _timings(start, marks)


def flower_run(config: SimulationConfig) -> dict[str, float]:
    """Total seconds, Ray's start-up estimate and the rounds' seconds of one Flower simulation."""
    marks: list[float] = []
    start = time.perf_counter()
    run_simulation(config, on_round=lambda *_: marks.append(time.perf_counter()))
    return _timings(start, marks) | {"total_s": time.perf_counter() - start}


def _timings(start: float, marks: list[float]) -> dict[str, float]:
    """Set-up (to the end of round 1, less one steady round) and the steady seconds per round.

    Round 1 carries the one-off work: Ray's start and each actor loading its data for Flower,
    loading data and partitions for the plain loop.
    """
    steady = statistics.median(b - a for a, b in zip(marks, marks[1:], strict=False))
    return {"setup_s": marks[0] - start - steady, "round_s": steady, "to_last_s": marks[-1] - start}


def main() -> None:
    """Run both paths ``--repeats`` times; print medians, the ratio and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--local-steps", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("flwr").setLevel(logging.ERROR)
    flower, plain = [], []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            config = SimulationConfig(
                dataset=args.dataset,
                model=args.model,
                clients=args.clients,
                rounds=args.rounds,
                batch_size=args.batch_size,
                local_steps=args.local_steps,
                seed=repeat,
                out_dir=Path(tmp) / "flower",
            )
            flower.append(flower_run(config))
            plain.append(plain_loop(config.model_copy(update={"out_dir": Path(tmp) / "plain"})))
    median = {
        f"{path}_{key}": statistics.median(run[key] for run in runs)
        for path, runs in (("flower", flower), ("plain", plain))
        for key in runs[0]
    }
    result = {"clients": args.clients, "rounds": args.rounds, "model": args.model, **median}
    result["round_ratio"] = result["flower_round_s"] / result["plain_round_s"]
    result["total_ratio"] = result["flower_total_s"] / result["plain_to_last_s"]
    for key, value in result.items():
        print(f"{key:20s} {value:.3f}" if isinstance(value, float) else f"{key:20s} {value}")
    print(json.dumps(result | {"versions": provenance(0, torch.device("cpu"))["versions"]}))


if __name__ == "__main__":
    main()
