"""The ClientApp: trains the global model on its partition and keeps its batches to itself.

:func:`build_client_app` makes one bound to a :class:`SimulationConfig` (for
``fedsim.flower.simulation``) or reading each message's run config (for ``flwr run .``), with
the run's defenses set up by a :data:`Defend` function. The images, labels, dataset indices
and dropout masks of a client's steps are saved client-side as GroundTruth; the reply carries
only the new arrays (after the defenses), ``num-examples``, defense metrics and the client's
partition id.
"""

from __future__ import annotations

import torch
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable, Mod

from fedsim.data import normalize
from fedsim.errors import UserInputError
from fedsim.flower.config import SimulationConfig
from fedsim.flower.defense_hooks import Defend, DefenseHooks, UpdateTransform, undefended
from fedsim.flower.local_training import defense_seed, dropout_seed, step_indices, train_steps
from fedsim.flower.quiet_logs import quiet_routine_logs
from fedsim.flower.records import (
    ARRAYS_KEY,
    CLIENT_KEY,
    CONFIG_KEY,
    METRICS_KEY,
    NUM_EXAMPLES,
    PARTITION_ID,
    SECURE_AGGREGATION_ACTION,
    flatten,
    float_names,
    masked_record,
    to_array_record,
    to_state_dict,
)
from fedsim.flower.run_dir import ground_truth_path
from fedsim.ground_truth import GroundTruth
from fedsim.models import build_model
from fedsim.models.dropout import recording_masks


def build_client_app(
    config: SimulationConfig | None = None, defend: Defend = undefended
) -> ClientApp:
    """A ClientApp bound to ``config``, or reading the run config of each message when None.

    The defenses' Flower mods wrap the train handler in their order (the first is outermost).
    """
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        quiet_routine_logs()
        partition_id, num_partitions = _partition_of(context)
        run, hooks = defend(
            config or SimulationConfig.from_run_config(context.run_config, num_partitions)
        )

        def handler(message: Message, ctxt: Context) -> Message:
            return train_on_partition(message, run, partition_id, hooks, ctxt)

        for mod in reversed(hooks.client_mods):
            handler = _chained(mod, handler)
        return handler(msg, context)

    @app.query(SECURE_AGGREGATION_ACTION)
    def secure_aggregation_round(msg: Message, context: Context) -> Message:
        quiet_routine_logs()
        partition_id, num_partitions = _partition_of(context)
        _, hooks = defend(
            config or SimulationConfig.from_run_config(context.run_config, num_partitions)
        )
        if hooks.secure_aggregation is None:
            raise UserInputError("a secure-aggregation query reached a run without secagg")
        content = hooks.secure_aggregation.client_step(msg, context, partition_id)
        return Message(content=content, reply_to=msg)

    return app


def _chained(mod: Mod, call_next: ClientAppCallable) -> ClientAppCallable:
    return lambda message, ctxt: mod(message, ctxt, call_next)


def train_on_partition(
    msg: Message,
    run: SimulationConfig,
    partition_id: int,
    hooks: DefenseHooks,
    context: Context,
) -> Message:
    """Run the local steps the server asked for and reply with the new (defended) arrays."""
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
    received = to_state_dict(msg.content[ARRAYS_KEY])
    model.load_state_dict(received)  # copies: ``received`` stays the global state
    torch.manual_seed(dropout_seed(run.seed, server_round, partition_id))
    settings = {
        "lr": lr,
        "train_mode": run.train_mode,
        "optimizer": str(sent["optimizer"]),
        "momentum": float(sent["momentum"]),
        "weight_decay": float(sent["weight-decay"]),
    }
    defense_metrics: dict[str, float] = {}
    with recording_masks(model) as dropout_masks:
        if hooks.train is None:
            train_steps(model, batches, data.spec, **settings)
        else:
            defense_metrics = hooks.train(
                model,
                batches,
                data.spec,
                **settings,
                partition_size=len(partition),
                state=context.state,
            )
    state = model.state_dict()
    protects = [] if hooks.protect_update is None else [hooks.protect_update]
    if hooks.protect_representation is not None:
        reference = build_model(run.model_spec())
        reference.load_state_dict(received)
        inputs = normalize(torch.cat([images for images, _ in batches]), data.spec)
        protects.insert(0, hooks.protect_representation(reference.eval(), inputs))
    if protects:
        seed = defense_seed(run.seed, server_round, partition_id)
        state = _protected(state, received, model, protects, seed)
    if hooks.secure_aggregation is None:
        arrays = to_array_record(state)
    else:
        names = float_names(state)
        update = flatten({name: state[name] - received[name] for name in names}, names)
        arrays = masked_record(hooks.secure_aggregation.mask(update, msg, context, partition_id))

    if run.capture:
        GroundTruth(
            images=torch.cat([images for images, _ in batches]),
            labels=torch.cat([labels for _, labels in batches]),
            indices=tuple(index for indices in steps for index in indices),
            dropout_masks=dropout_masks,
        ).save(ground_truth_path(run.out_dir, server_round, partition_id))
    content = RecordDict(
        {
            ARRAYS_KEY: arrays,
            METRICS_KEY: MetricRecord({NUM_EXAMPLES: len(steps) * batch_size, **defense_metrics}),
            CLIENT_KEY: ConfigRecord({PARTITION_ID: partition_id}),
        }
    )
    return Message(content=content, reply_to=msg)


def _protected(
    state: dict[str, torch.Tensor],
    received: dict[str, torch.Tensor],
    model: torch.nn.Module,
    protects: list[UpdateTransform],
    seed: int,
) -> dict[str, torch.Tensor]:
    """The state to send: received parameters plus the update defended by ``protects`` in
    order (one generator for all); buffers as trained."""
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    protected = {name: state[name] - received[name] for name in trainable}
    generator = torch.Generator().manual_seed(seed)
    for protect in protects:
        protected = protect(protected, generator)
    return {**state, **{name: received[name] + protected[name] for name in trainable}}


def _partition_of(context: Context) -> tuple[int, int]:
    try:
        return int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])
    except KeyError:
        raise UserInputError(
            "this SuperNode has no partition-id / num-partitions in its node config; start it "
            "with --node-config 'partition-id=0 num-partitions=2' (one id per SuperNode)"
        ) from None
