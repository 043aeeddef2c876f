"""The ClientApp: trains the global model on its partition and keeps its batches to itself.

``flwr run .`` loads ``app`` (settings from the run config); :func:`build_client_app` makes one
bound to a :class:`SimulationConfig` for ``fedsim.flower.simulation``. The images, labels,
dataset indices and dropout masks of a client's steps are saved client-side as GroundTruth;
the reply carries only the new arrays, ``num-examples`` and the client's partition id.
"""

from __future__ import annotations

import torch
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedsim.errors import UserInputError
from fedsim.flower.config import SimulationConfig
from fedsim.flower.local_training import dropout_seed, step_indices, train_steps
from fedsim.flower.records import (
    ARRAYS_KEY,
    CLIENT_KEY,
    CONFIG_KEY,
    METRICS_KEY,
    NUM_EXAMPLES,
    PARTITION_ID,
    to_array_record,
    to_state_dict,
)
from fedsim.flower.run_dir import ground_truth_path
from fedsim.ground_truth import GroundTruth
from fedsim.models import build_model
from fedsim.models.dropout import recording_masks


def build_client_app(config: SimulationConfig | None = None) -> ClientApp:
    """A ClientApp bound to ``config``, or reading the run config of each message when None."""
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        partition_id, num_partitions = _partition_of(context)
        run = config or SimulationConfig.from_run_config(context.run_config, num_partitions)
        return train_on_partition(msg, run, partition_id)

    return app


def train_on_partition(msg: Message, run: SimulationConfig, partition_id: int) -> Message:
    """Run the local steps the server asked for and reply with the new arrays."""
    sent = msg.content[CONFIG_KEY]
    server_round = int(sent["server-round"])
    lr, batch_size = float(sent["lr"]), int(sent["batch-size"])
    local_steps = int(sent["local-steps"])
    data = run.train_data()
    partition = run.partitions()[partition_id]
    steps = step_indices(
        partition,
        local_steps=local_steps,
        batch_size=batch_size,
        seed=run.seed,
        server_round=server_round,
        partition_id=partition_id,
        local_epochs=int(sent["local-epochs"]),
    )
    batches = [data.images(indices) for indices in steps]

    model = build_model(run.model_spec())
    model.load_state_dict(to_state_dict(msg.content[ARRAYS_KEY]))
    torch.manual_seed(dropout_seed(run.seed, server_round, partition_id))
    with recording_masks(model) as dropout_masks:
        train_steps(
            model,
            batches,
            data.spec,
            lr=lr,
            train_mode=run.train_mode,
            optimizer=str(sent["optimizer"]),
            momentum=float(sent["momentum"]),
            weight_decay=float(sent["weight-decay"]),
        )

    GroundTruth(
        images=torch.cat([images for images, _ in batches]),
        labels=torch.cat([labels for _, labels in batches]),
        indices=tuple(index for indices in steps for index in indices),
        dropout_masks=dropout_masks,
    ).save(ground_truth_path(run.out_dir, server_round, partition_id))
    content = RecordDict(
        {
            ARRAYS_KEY: to_array_record(model.state_dict()),
            METRICS_KEY: MetricRecord({NUM_EXAMPLES: len(steps) * batch_size}),
            CLIENT_KEY: ConfigRecord({PARTITION_ID: partition_id}),
        }
    )
    return Message(content=content, reply_to=msg)


def _partition_of(context: Context) -> tuple[int, int]:
    try:
        return int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])
    except KeyError:
        raise UserInputError(
            "this SuperNode has no partition-id / num-partitions in its node config; start it "
            "with --node-config 'partition-id=0 num-partitions=2' (one id per SuperNode)"
        ) from None


app = build_client_app()
