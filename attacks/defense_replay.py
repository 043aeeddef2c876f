"""Defense-aware matching: the known, deterministic parts of a client's recorded defenses,
replayed on the attacker's dummy update before it is compared with the observed one.

What is replayed: clipping to the recorded bound; the zeros of the observed update (pruning's
mask, Soteria's pruned columns), which the server sees; quantisation onto the recorded number
of levels between each observed tensor's min and max, through a straight-through estimator
(nearest level forward, identity backward). Noise (gaussian, dp-sgd's) is random and is not
replayed, nor is dp-sgd's per-example clipping.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from defenses.specs import Clip, Prune, Quantize, Soteria, parse_defense
from fedsim.observation import Observation

REPLAYED = ("clip", "prune", "quantize", "soteria")
"""Defenses with a known, deterministic part the attacker replays."""

Update = list[torch.Tensor]
Replay = Callable[[Update], Update]


def _clip(max_norm: float) -> Replay:
    def replay(update: Update) -> Update:
        norm = torch.sqrt(sum((t**2).sum() for t in update))
        scale = torch.clamp(max_norm / (norm + 1e-12), max=1.0)
        return [t * scale for t in update]

    return replay


def _observed_zeros(target: Update) -> Replay:
    kept = [(t != 0).to(t.dtype) for t in target]
    return lambda update: [t * mask for t, mask in zip(update, kept, strict=True)]


def _quantize(target: Update, bits: int) -> Replay:
    levels = 2**bits - 1
    ranges = [(t.min(), t.max()) for t in target]

    def replay(update: Update) -> Update:
        out = []
        for t, (low, high) in zip(update, ranges, strict=True):
            if high <= low:
                out.append(t)
                continue
            step = (high - low) / levels
            nearest = ((t - low) / step).round().clamp(0, levels) * step + low
            out.append(t + (nearest - t).detach())
        return out

    return replay


def replayed_defenses(observation: Observation) -> list[str]:
    """The recorded defenses whose known parts the attacker replays, in their order."""
    return [text for text in observation.defenses if text.partition(":")[0] in REPLAYED]


def defense_replay(observation: Observation, target: Update) -> Replay | None:
    """The replay of ``observation.defenses`` in their recorded order, on updates laid out
    like ``target`` (the observed update's tensors); None when nothing is replayable."""
    # A returned-weights update was clipped before the attacker's (global − returned)/lr.
    clip_unit = 1.0 if observation.update_kind == "gradient" else observation.lr
    parts: list[Replay] = []
    for text in replayed_defenses(observation):
        params = parse_defense(text, "attack").params
        if isinstance(params, Clip):
            parts.append(_clip(params.max_norm / clip_unit))
        elif isinstance(params, Prune | Soteria):
            parts.append(_observed_zeros(target))
        elif isinstance(params, Quantize):
            parts.append(_quantize(target, params.bits))
    if not parts:
        return None

    def replay(update: Update) -> Update:
        for part in parts:
            update = part(update)
        return update

    return replay
