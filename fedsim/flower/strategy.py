"""``CuriousServer``: a strategy wrapper whose server keeps every client update it receives."""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, Strategy

from fedsim.errors import FedleakError
from fedsim.flower.capture import ObservationRecorder
from fedsim.flower.defense_hooks import SecureAggregation
from fedsim.flower.records import (
    ARRAYS_KEY,
    METRICS_KEY,
    NUM_EXAMPLES,
    float_names,
    masked_vector,
    reply_partition_id,
    to_array_record,
    to_state_dict,
    unflatten,
)


class ClientFailedError(FedleakError):
    """A client's ClientApp raised; its reason is in the message."""


def all_clients_fedavg(num_clients: int) -> FedAvg:
    """Flower's FedAvg training every one of ``num_clients`` clients each round, no federated
    evaluation (global accuracy is measured server-side)."""
    return FedAvg(
        fraction_train=1.0,
        fraction_evaluate=0.0,
        min_train_nodes=num_clients,
        min_available_nodes=num_clients,
    )


class CuriousServer(Strategy):
    """An honest-but-curious server: it runs ``strategy`` and keeps each update as an Observation.

    The record is made from the replies as they arrive, before the wrapped strategy touches
    them: a server-side defense (Flower's central DP clipping) protects the published model,
    not the client from this server. A failed client fails the round instead of being averaged
    away, so a run either captures every update or stops.

    With ``secure_aggregation`` the server only ever holds masked vectors and their sum: it
    records the aggregate alone, and averages the survivors' updates with equal weights (the
    sum is all it learns; with ``local-steps`` every client sees the same number of images,
    so this is FedAvg's weighting too). Clients that fail then count as dropped out.

    Parameters
    ----------
    strategy : Strategy
        What the server runs: FedAvg over all clients, possibly wrapped by defenses.
    recorder : ObservationRecorder
        Saves the Observation of each reply: the arrays sent that round and those returned.
    secure_aggregation : SecureAggregation, optional
        The protocol that hides each update from this server.
    """

    def __init__(
        self,
        strategy: Strategy,
        recorder: ObservationRecorder,
        secure_aggregation: SecureAggregation | None = None,
    ) -> None:
        self.strategy = strategy
        self.recorder = recorder
        self.secure_aggregation = secure_aggregation
        self.client_metrics: dict[int, dict[int, dict[str, float]]] = {}
        self._sent: dict[int, ArrayRecord] = {}
        self._grid: Grid | None = None

    def summary(self) -> None:
        """Log the wrapped strategy's summary."""
        self.strategy.summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the global arrays of this round, then configure it as the strategy does
        (after the secure-aggregation set-up rounds, whose output each train message carries)."""
        self._sent[server_round], self._grid = arrays, grid
        messages = list(self.strategy.configure_train(server_round, arrays, config, grid))
        if self.secure_aggregation is None:
            return messages
        state = to_state_dict(arrays)
        length = sum(state[name].numel() for name in float_names(state))
        nodes = [message.metadata.dst_node_id for message in messages]
        extras = self.secure_aggregation.setup(grid, server_round, nodes, length)
        return [
            Message(
                content=RecordDict({**message.content, **extras[node]}),
                dst_node_id=node,
                message_type=message.metadata.message_type,
            )
            for message, node in zip(messages, nodes, strict=True)
        ]

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Record each reply as an Observation, then aggregate as the strategy does."""
        replies = list(replies)
        failed = [reply for reply in replies if reply.has_error()]
        if self.secure_aggregation is not None and self._grid is not None:
            return self._aggregate_securely(
                self.secure_aggregation, self._grid, server_round, replies, failed
            )
        if failed:
            raise ClientFailedError(
                f"round {server_round}: {len(failed)} of {len(replies)} clients failed; "
                f"first: {_last_line(failed[0].error.reason)}"
            )
        global_state = to_state_dict(self._sent.pop(server_round))
        self.client_metrics[server_round] = {}
        for reply in replies:
            client = reply_partition_id(reply)
            metrics = {k: float(v) for k, v in reply.content[METRICS_KEY].items()}
            num_examples = int(metrics.pop(NUM_EXAMPLES))
            self.client_metrics[server_round][client] = metrics
            self.recorder.record(
                server_round,
                client,
                global_state,
                to_state_dict(reply.content[ARRAYS_KEY]),
                num_examples,
                metrics,
            )
        arrays, metrics = self.strategy.aggregate_train(server_round, replies)
        if arrays is not None:
            # Flower averages in NumPy, which turns int64 buffers (BatchNorm's
            # num_batches_tracked) into float64; send the next round the dtypes of this one.
            averaged = to_state_dict(arrays)
            arrays = to_array_record(
                {name: value.to(global_state[name].dtype) for name, value in averaged.items()}
            )
        return arrays, metrics

    def _aggregate_securely(
        self,
        protocol: SecureAggregation,
        grid: Grid,
        server_round: int,
        replies: list[Message],
        failed: list[Message],
    ) -> tuple[ArrayRecord, MetricRecord]:
        """Unmask the survivors' sum, record it as the round's one observation, average it."""
        global_state = to_state_dict(self._sent.pop(server_round))
        arrived = [reply for reply in replies if not reply.has_error()]
        masked = {reply_partition_id(r): masked_vector(r.content[ARRAYS_KEY]) for r in arrived}
        examples = {
            reply_partition_id(r): int(r.content[METRICS_KEY][NUM_EXAMPLES]) for r in arrived
        }
        try:
            total, survivors = protocol.unmask(grid, server_round, masked)
        except FedleakError as error:
            if not failed:
                raise
            raise ClientFailedError(
                f"round {server_round}: secure aggregation failed ({error}); {len(failed)} "
                f"clients failed, first: {_last_line(failed[0].error.reason)}"
            ) from error
        names = float_names(global_state)
        mean = unflatten(total / len(survivors), global_state, names)
        state = {**global_state, **{name: global_state[name] + mean[name] for name in names}}
        survived = {client: examples[client] for client in survivors}
        self.recorder.record_aggregate(server_round, global_state, state, survived)
        return to_array_record(state), MetricRecord({NUM_EXAMPLES: sum(survived.values())})

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Configure federated evaluation as the strategy does."""
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Aggregate federated evaluation as the strategy does."""
        return self.strategy.aggregate_evaluate(server_round, replies)


def _last_line(reason: str) -> str:
    """The line that says what went wrong; a failed ClientApp's reason is a whole traceback."""
    lines = [line.strip() for line in reason.splitlines() if line.strip()]
    # Ray wraps the reason as <class '...'>:<'...'>; drop the closing quote and bracket.
    return lines[-1].removesuffix("'>") if lines else "no reason given"
