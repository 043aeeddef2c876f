"""``CuriousFedAvg``: Flower's FedAvg that also records every client update it receives."""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from fedsim.errors import FedleakError
from fedsim.flower.capture import ObservationRecorder
from fedsim.flower.records import (
    ARRAYS_KEY,
    METRICS_KEY,
    NUM_EXAMPLES,
    reply_partition_id,
    to_array_record,
    to_state_dict,
)


class ClientFailedError(FedleakError):
    """A client's ClientApp raised; its reason is in the message."""


class CuriousFedAvg(FedAvg):
    """Federated Averaging whose server, honest but curious, keeps each update as an Observation.

    Every round trains on all ``num_clients`` clients and skips federated evaluation (global
    accuracy is measured server-side). A failed client fails the round instead of being
    averaged away, so a run either captures every update or stops.

    Parameters
    ----------
    recorder : ObservationRecorder
        Saves the Observation of each reply: the arrays sent that round and those returned.
    num_clients : int
        Clients sampled every round; the server waits until that many are connected.
    """

    def __init__(self, recorder: ObservationRecorder, num_clients: int) -> None:
        super().__init__(
            fraction_train=1.0,
            fraction_evaluate=0.0,
            min_train_nodes=num_clients,
            min_available_nodes=num_clients,
        )
        self.recorder = recorder
        self._sent: dict[int, ArrayRecord] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the global arrays of this round, then configure it as FedAvg does."""
        self._sent[server_round] = arrays
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Record each reply as an Observation, then average them as FedAvg does."""
        replies = list(replies)
        failed = [reply for reply in replies if reply.has_error()]
        if failed:
            raise ClientFailedError(
                f"round {server_round}: {len(failed)} of {len(replies)} clients failed; "
                f"first: {_last_line(failed[0].error.reason)}"
            )
        global_state = to_state_dict(self._sent.pop(server_round))
        for reply in replies:
            self.recorder.record(
                server_round,
                reply_partition_id(reply),
                global_state,
                to_state_dict(reply.content[ARRAYS_KEY]),
                int(reply.content[METRICS_KEY][NUM_EXAMPLES]),
            )
        arrays, metrics = super().aggregate_train(server_round, replies)
        if arrays is not None:
            # Flower averages in NumPy, which turns int64 buffers (BatchNorm's
            # num_batches_tracked) into float64; send the next round the dtypes of this one.
            averaged = to_state_dict(arrays)
            arrays = to_array_record(
                {name: value.to(global_state[name].dtype) for name, value in averaged.items()}
            )
        return arrays, metrics


def _last_line(reason: str) -> str:
    """The line that says what went wrong; a failed ClientApp's reason is a whole traceback."""
    lines = [line.strip() for line in reason.splitlines() if line.strip()]
    # Ray wraps the reason as <class '...'>:<'...'>; drop the closing quote and bracket.
    return lines[-1].removesuffix("'>") if lines else "no reason given"
