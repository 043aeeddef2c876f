"""What client and server put in Flower messages, and the torch tensors those records hold."""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import ArrayRecord, Message

# Keys of a train reply's RecordDict, besides Flower's "arrays" / "config" on the way out.
ARRAYS_KEY = "arrays"
CONFIG_KEY = "config"
METRICS_KEY = "metrics"
CLIENT_KEY = "client"
PARTITION_ID = "partition-id"
NUM_EXAMPLES = "num-examples"


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
