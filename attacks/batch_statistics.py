"""What a FedAvg client's BatchNorm buffers leak: its batches' per-channel mean and variance.

In train mode a BatchNorm layer with momentum m updates, per local step t with batch statistic
s_t, ``running ← (1 − m)·running + m·s_t``, where s_t is the batch's channel mean, or, for
``running_var``, its *unbiased* channel variance (n/(n − 1) times the biased variance that
normalises the batch, n = batch × spatial positions). After k steps from the global buffers
``old`` the returned buffers are ``new = (1 − m)^k·old + Σ_t m(1 − m)^(k − t)·s_t``: the server
knows old, new, m and k, so it knows the weighted sum Σ_t w_t·s_t exactly: one step gives the
batch's statistics themselves, several steps only that sum (each s_t computed at that step's
weights). Layers with ``momentum=None`` (a cumulative average) weigh every batch
1/num_batches_tracked instead.

GradInversion (Yin et al., CVPR 2021) matches a dummy batch's statistics to the model's running
statistics instead, a weaker prior: :func:`running_statistics` is that fallback where nothing
leaks (a FedSGD gradient carries no buffers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from fedsim.models import build_model
from fedsim.observation import Observation

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
StatisticsSource = Literal["leaked", "running"]


@dataclass(frozen=True)
class LayerStatistics:
    """One BatchNorm layer's target: Σ_t w_t·(channel mean, unbiased channel variance) of the
    client's step batches over Σ_t w_t, with the per-step weights ``weights`` (sum 1)."""

    mean: torch.Tensor
    var: torch.Tensor
    weights: tuple[float, ...]


@dataclass(frozen=True)
class BatchNormTargets:
    """The prior's targets per BatchNorm layer (by module name), where they come from, and why."""

    layers: dict[str, LayerStatistics]
    source: StatisticsSource
    reason: str

    def describe(self) -> dict[str, object]:
        """What ``config.json`` records: the source, the reason and the layers matched."""
        return {"source": self.source, "reason": self.reason, "layers": len(self.layers)}


def batch_norm_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The model's BatchNorm layers by module name, in definition order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, BATCH_NORMS)}


def step_weights(momentum: float | None, tracked_before: int, steps: int) -> tuple[float, tuple]:
    """(coefficient of the old buffer, weight of each step's statistic) after ``steps`` updates
    of a layer with ``momentum`` (None: cumulative average after ``tracked_before`` batches)."""
    if momentum is None:
        total = tracked_before + steps
        return tracked_before / total, tuple(1 / total for _ in range(steps))
    keep = 1.0 - momentum
    return keep**steps, tuple(momentum * keep ** (steps - t) for t in range(1, steps + 1))


def leaked_batch_statistics(observation: Observation) -> dict[str, LayerStatistics]:
    """Each BatchNorm layer's client batch statistics, solved from the global and returned
    buffers: exact after one local step, the normalised weighted sum after several.

    Raises ValueError where the observation lacks a layer's returned buffers or its batch
    count did not advance by the local steps (no train-mode update to read).
    """
    model = build_model(observation.model)
    sent, returned = observation.global_state, observation.client_buffers
    steps = observation.local_steps
    layers = {}
    for name, layer in batch_norm_layers(model).items():
        keys = [f"{name}.{b}" for b in ("running_mean", "running_var", "num_batches_tracked")]
        missing = [key for key in keys if key not in returned or key not in sent]
        if missing:
            raise ValueError(f"no returned buffer {missing[0]!r}")
        before, after = int(sent[keys[2]]), int(returned[keys[2]])
        if after - before != steps:
            raise ValueError(
                f"{keys[2]} went {before} → {after}, not +{steps} (the client's local steps)"
            )
        old_weight, weights = step_weights(layer.momentum, before, steps)
        total = sum(weights)
        solve = [(returned[k].double() - old_weight * sent[k].double()) / total for k in keys[:2]]
        normalised = tuple(w / total for w in weights)
        layers[name] = LayerStatistics(solve[0].float(), solve[1].float(), normalised)
    return layers


def running_statistics(observation: Observation) -> dict[str, LayerStatistics]:
    """Each BatchNorm layer's running mean and variance in the global model (GradInversion's
    target), every local step weighted alike."""
    model = build_model(observation.model)
    steps = observation.local_steps
    sent = observation.global_state
    return {
        name: LayerStatistics(
            sent[f"{name}.running_mean"].float(),
            sent[f"{name}.running_var"].float(),
            tuple(1 / steps for _ in range(steps)),
        )
        for name in batch_norm_layers(model)
    }


def prior_targets(observation: Observation, source: StatisticsSource) -> BatchNormTargets:
    """The BatchNorm prior's targets: the leaked statistics when ``source`` is ``"leaked"``
    and the client's buffers give them, else the global running statistics, with the reason."""
    if source == "running":
        reason = "asked for: the global model's running statistics (GradInversion's assumption)"
        return BatchNormTargets(running_statistics(observation), "running", reason)
    if not observation.client_buffers:
        reason = (
            f"fallback: the {observation.update_kind} update carries no BatchNorm buffers; "
            "the global model's running statistics stand in"
        )
        return BatchNormTargets(running_statistics(observation), "running", reason)
    if not observation.train_mode:
        reason = "fallback: an eval-mode client leaves its buffers unchanged; running statistics"
        return BatchNormTargets(running_statistics(observation), "running", reason)
    try:
        layers = leaked_batch_statistics(observation)
    except ValueError as error:
        reason = f"fallback: {error}; the global model's running statistics stand in"
        return BatchNormTargets(running_statistics(observation), "running", reason)
    steps = observation.local_steps
    exact = "exact batch statistics" if steps == 1 else "their weighted sum over the steps"
    reason = f"leaked: the client's returned buffers after {steps} local step(s), {exact}"
    return BatchNormTargets(layers, "leaked", reason)


def channel_statistics(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A BatchNorm input's per-channel mean and unbiased variance (as ``running_var`` stores)."""
    dims = [d for d in range(inputs.dim()) if d != 1]
    return inputs.mean(dims), inputs.var(dims, correction=1)


@contextmanager
def recorded_statistics(
    layers: dict[str, nn.Module],
) -> Iterator[dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Record, per layer name, the :func:`channel_statistics` of its input during the block."""
    recorded: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def hook(name: str):
        return lambda module, inputs: recorded.__setitem__(name, channel_statistics(inputs[0]))

    handles = [layer.register_forward_pre_hook(hook(name)) for name, layer in layers.items()]
    try:
        yield recorded
    finally:
        for handle in handles:
            handle.remove()
