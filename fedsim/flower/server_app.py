"""The ServerApp: FedAvg over every client, each update recorded, global accuracy per round.

:func:`build_server_app` makes one bound to a :class:`SimulationConfig`, or reading the run
config (the number of clients from its ``num-clients``, or, when that is 0, every SuperNode
connected once their count holds steady), with the run's defenses set up by a :data:`Defend`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from logging import INFO

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.supercore import log

from fedsim.errors import FedleakError
from fedsim.flower.capture import ObservationRecorder
from fedsim.flower.config import SimulationConfig
from fedsim.flower.defense_hooks import NO_DEFENSES, Defend, DefenseHooks, undefended
from fedsim.flower.evaluation import GlobalEvaluator
from fedsim.flower.records import to_array_record, to_state_dict
from fedsim.flower.run_dir import (
    ACCURACY_FILE,
    CONFIG_FILE,
    FINAL_WEIGHTS_FILE,
    PARTITIONS_FILE,
    PRIVACY_FILE,
)
from fedsim.flower.strategy import CuriousServer, all_clients_fedavg
from fedsim.models import build_model
from fedsim.models.trained_weights import load_trained_weights
from fedsim.provenance import provenance, seed_everything
from fedsim.storage import write_json

RoundCallback = Callable[[int, float], None]
"""Called after each round with the round number and the global test accuracy in [0, 1]."""

_SETTLE_S = 3.0
_CONNECT_TIMEOUT_S = 600.0


def build_server_app(
    config: SimulationConfig | None = None,
    on_round: RoundCallback | None = None,
    defend: Defend = undefended,
) -> ServerApp:
    """A ServerApp bound to ``config``, or reading the run config when None."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run, hooks = defend(config or _config_from_run_config(grid, context))
        serve(grid, run, on_round, hooks)

    return app


def serve(
    grid: Grid,
    run: SimulationConfig,
    on_round: RoundCallback | None = None,
    hooks: DefenseHooks = NO_DEFENSES,
) -> list[float]:
    """Run ``run.rounds`` rounds of FedAvg under a curious server; return the global accuracy
    after each. ``hooks`` wrap the strategy (Flower's central DP) or aggregate securely."""
    seed_everything(run.seed)
    model = build_model(run.model_spec())
    if run.initial_weights is not None:
        load_trained_weights(model, run.model, run.initial_weights)
    _write_run_record(run)
    trainable = tuple(name for name, p in model.named_parameters() if p.requires_grad)
    recorder = ObservationRecorder.for_run(run, trainable)
    evaluator = GlobalEvaluator(
        build_model(run.model_spec()), run.dataset_spec(), run.test_images, run.allow_embedded
    )
    history: dict[int, float] = {}
    strategy = all_clients_fedavg(run.clients)
    if hooks.wrap_strategy is not None:
        strategy = hooks.wrap_strategy(strategy, run.clients)
    server = CuriousServer(strategy, recorder, hooks.secure_aggregation)

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        state = to_state_dict(arrays)
        history[server_round] = evaluator.accuracy(state)
        if server_round == run.rounds:
            _write_final_weights(run, state)
        write_json(
            run.out_dir / ACCURACY_FILE,
            {
                "test_images": len(evaluator.labels),
                "initial": history[0],
                "rounds": [r for r in history if r > 0],
                "accuracy": [a for r, a in history.items() if r > 0],
            },
        )
        if server_round > 0:
            _write_privacy(run, server.client_metrics)
        if on_round and server_round > 0:
            on_round(server_round, history[server_round])
        return MetricRecord({"accuracy": history[server_round]})

    server.start(
        grid=grid,
        initial_arrays=to_array_record(model.state_dict()),
        num_rounds=run.rounds,
        train_config=ConfigRecord(
            {
                "lr": run.lr,
                "optimizer": run.optimizer,
                "momentum": run.momentum,
                "weight-decay": run.weight_decay,
                "local-steps": run.local_steps,
                "local-epochs": run.local_epochs,
                "batch-size": run.batch_size,
            }
        ),
        evaluate_fn=evaluate,
    )
    return [history[r] for r in range(1, run.rounds + 1)]


def _write_final_weights(run: SimulationConfig, state: dict[str, torch.Tensor]) -> None:
    """final_weights.safetensors: the global state after the last round, with the run's model,
    dataset, seed and command-line config in its metadata."""
    from safetensors.torch import save_file

    metadata = {"model": run.model, "dataset": run.dataset, "rounds": str(run.rounds)}
    metadata |= {"seed": str(run.seed), "config": run.model_dump_json()}
    tensors = {name: value.detach().cpu().contiguous() for name, value in state.items()}
    save_file(tensors, str(run.out_dir / FINAL_WEIGHTS_FILE), metadata=metadata)


def _write_privacy(run: SimulationConfig, client_metrics: dict[int, dict[int, dict]]) -> None:
    """privacy.json: each client's DP-SGD ε after each round, when clients report one."""
    epsilon = {
        server_round: {client: m["dp-epsilon"] for client, m in clients.items()}
        for server_round, clients in client_metrics.items()
        if all("dp-epsilon" in m for m in clients.values()) and clients
    }
    if epsilon:
        write_json(
            run.out_dir / PRIVACY_FILE,
            {
                "defenses": list(run.defenses),
                "rounds": list(epsilon),
                "epsilon": [max(values.values()) for values in epsilon.values()],
                "epsilon_per_client": [list(values.values()) for values in epsilon.values()],
            },
        )


def _write_run_record(run: SimulationConfig) -> None:
    """config.json (run, seed, versions, commit) and partitions.json, before round 1."""
    data = run.train_data()
    labels = data.labels().numpy()
    partitions = run.partitions()
    write_json(
        run.out_dir / CONFIG_FILE,
        {
            "config": run.model_dump(mode="json"),
            "run_config": run.to_run_config(),
            "data_source": data.source,
            "update": "weights after local SGD steps (FedAvg); observations keep parameters",
            **provenance(run.seed, torch.device("cpu")),
        },
    )
    write_json(
        run.out_dir / PARTITIONS_FILE,
        {
            "partition": run.partition,
            "clients": [
                {
                    "client": client,
                    "size": len(rows),
                    "label_counts": np.bincount(
                        labels[rows], minlength=run.dataset_spec().num_classes
                    ).tolist(),
                }
                for client, rows in enumerate(partitions)
            ],
        },
    )


def _config_from_run_config(grid: Grid, context: Context) -> SimulationConfig:
    clients = int(context.run_config.get("num-clients", 0)) or _wait_for_clients(grid)
    return SimulationConfig.from_run_config(context.run_config, clients)


def _wait_for_clients(grid: Grid) -> int:
    """Count the connected SuperNodes once the count has held steady for a few seconds."""
    deadline = time.monotonic() + _CONNECT_TIMEOUT_S
    count, steady_since = 0, time.monotonic()
    while time.monotonic() < deadline:
        now = len(list(grid.get_node_ids()))
        if now != count:
            count, steady_since = now, time.monotonic()
        elif count and time.monotonic() - steady_since >= _SETTLE_S:
            log(INFO, "fedleak: %d SuperNodes connected; one client each", count)
            return count
        time.sleep(0.2)
    raise FedleakError(f"no SuperNode connected within {_CONNECT_TIMEOUT_S:.0f} s")
