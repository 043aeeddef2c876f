"""What client and server put in Flower messages, and the torch tensors those records hold."""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, Message

# Keys of a train reply's RecordDict, besides Flower's "arrays" / "config" on the way out.
ARRAYS_KEY = "arrays"
CONFIG_KEY = "config"
METRICS_KEY = "metrics"
CLIENT_KEY = "client"
PARTITION_ID = "partition-id"
NUM_EXAMPLES = "num-examples"
MASKED_KEY = "masked-update"  # under secure aggregation, the reply's one array
SECURE_AGGREGATION_ACTION = "secagg"  # the protocol's extra rounds: `query.secagg` messages


def to_state_dict(arrays: ArrayRecord) -> dict[str, torch.Tensor]:
    """Copy an ArrayRecord into writable torch tensors, keyed as the model's state_dict."""
    # ArrayRecord.to_torch_state_dict wraps read-only buffers, which torch warns about.
    return {name: torch.from_numpy(np.array(array.numpy())) for name, array in arrays.items()}


def to_array_record(state: dict[str, torch.Tensor]) -> ArrayRecord:
    """Pack a state_dict (parameters and buffers) as an ArrayRecord."""
    return ArrayRecord({name: tensor.detach().cpu() for name, tensor in state.items()})


def reply_partition_id(reply: Message) -> int:
    """The partition id a client put in its train reply (it names the client's files)."""
    return int(reply.content[CLIENT_KEY][PARTITION_ID])


def float_names(state: dict[str, torch.Tensor]) -> list[str]:
    """The floating-point entries of a state dict (parameters and float buffers), in order."""
    return [name for name, tensor in state.items() if tensor.is_floating_point()]


def flatten(tensors: dict[str, torch.Tensor], names: list[str]) -> np.ndarray:
    """The named tensors as one float64 vector, in ``names`` order."""
    return torch.cat([tensors[name].detach().double().flatten() for name in names]).numpy()


def unflatten(
    vector: np.ndarray, like: dict[str, torch.Tensor], names: list[str]
) -> dict[str, torch.Tensor]:
    """Cut a vector made by :func:`flatten` back into tensors shaped and typed like ``like``."""
    tensors, start = {}, 0
    for name in names:
        size = like[name].numel()
        values = torch.from_numpy(vector[start : start + size].copy())
        tensors[name] = values.view_as(like[name]).to(like[name].dtype)
        start += size
    return tensors


def masked_record(masked: np.ndarray) -> ArrayRecord:
    """A secure-aggregation reply's arrays: the masked update vector alone (uint64)."""
    return ArrayRecord({MASKED_KEY: Array(masked)})


def masked_vector(arrays: ArrayRecord) -> np.ndarray:
    """The masked update vector of a secure-aggregation reply."""
    return np.array(arrays[MASKED_KEY].numpy())
