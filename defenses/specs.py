"""Defense names and their parameters: ``NAME[:k=v,...]`` parsed and validated in one place.

The registry below is the one list of defenses the CLI, the benchmarks and the viewer read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fedsim.errors import UnknownNameError, UserInputError

Stage = Literal["simulate", "attack"]


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Clip(_Params):
    """Scale the whole update down to L2 norm ``max_norm`` when it is longer."""

    max_norm: float = Field(gt=0, allow_inf_nan=False)


class Gaussian(_Params):
    """Add N(0, std²) noise to every coordinate of the update."""

    std: float = Field(gt=0, allow_inf_nan=False)


class Prune(_Params):
    """Zero the ``fraction`` of each tensor's update entries with the smallest magnitudes."""

    fraction: float = Field(gt=0, lt=1)


class Quantize(_Params):
    """Stochastic rounding of each tensor onto 2**bits evenly spaced levels in [min, max]."""

    bits: int = Field(ge=1, le=16)


class Soteria(_Params):
    """Soteria (Sun et al. 2021): prune the ``fraction`` of the last linear layer's input
    features whose norm is largest against their sensitivity to the input; the matching
    columns of that layer's weight gradient are zeroed."""

    fraction: float = Field(gt=0, lt=1)


class DpSgd(_Params):
    """Opacus DP-SGD: per-example clipping to ``max_grad_norm``, Gaussian noise, RDP ε at
    ``delta``, accumulated over every round."""

    noise_multiplier: float = Field(gt=0, allow_inf_nan=False)
    max_grad_norm: float = Field(gt=0, allow_inf_nan=False)
    delta: float = Field(1e-5, gt=0, lt=1)


class Dropout(_Params):
    """Train with dropout rate ``p`` (models with dropout layers)."""

    p: float = Field(gt=0, lt=1)


class FlowerFixedClipping(_Params):
    """Flower's central DP with fixed clipping norm and server-side Gaussian noise."""

    noise_multiplier: float = Field(ge=0, allow_inf_nan=False)
    clipping_norm: float = Field(gt=0, allow_inf_nan=False)


class FlowerAdaptiveClipping(_Params):
    """Flower's central DP with an adaptive clipping norm (Andrew et al. 2021)."""

    noise_multiplier: float = Field(ge=0, allow_inf_nan=False)
    initial_clipping_norm: float = Field(0.1, gt=0)
    target_clipped_quantile: float = Field(0.5, ge=0, le=1)
    clip_norm_lr: float = Field(0.2, gt=0)


class LocalDp(_Params):
    """Flower's ``LocalDpMod``: the client clips its update and adds Laplace-calibrated noise."""

    clipping_norm: float = Field(gt=0, allow_inf_nan=False)
    sensitivity: float = Field(ge=0, allow_inf_nan=False)
    epsilon: float = Field(gt=0, allow_inf_nan=False)
    delta: float = Field(gt=0, lt=1)


class SecAgg(_Params):
    """Secure aggregation: the server learns only the sum; ``threshold`` of the clients must
    stay (default: a majority); ``drop`` clients drop out after sharing keys (to exercise
    recovery)."""

    threshold: int = Field(0, ge=0)
    drop: int = Field(0, ge=0)


@dataclass(frozen=True)
class _Entry:
    params: type[_Params]
    stages: tuple[Stage, ...]


_REGISTRY: dict[str, _Entry] = {
    "clip": _Entry(Clip, ("simulate", "attack")),
    "gaussian": _Entry(Gaussian, ("simulate", "attack")),
    "prune": _Entry(Prune, ("simulate", "attack")),
    "quantize": _Entry(Quantize, ("simulate", "attack")),
    "soteria": _Entry(Soteria, ("simulate", "attack")),
    "dp-sgd": _Entry(DpSgd, ("simulate", "attack")),
    "dropout": _Entry(Dropout, ("simulate", "attack")),
    "flower-dp-client": _Entry(FlowerFixedClipping, ("simulate",)),
    "flower-dp-server": _Entry(FlowerFixedClipping, ("simulate",)),
    "flower-dp-adaptive": _Entry(FlowerAdaptiveClipping, ("simulate",)),
    "local-dp": _Entry(LocalDp, ("simulate",)),
    "secagg": _Entry(SecAgg, ("simulate",)),
}


@dataclass(frozen=True)
class DefenseSpec:
    """One defense: its registry name and validated parameters; ``str()`` is canonical."""

    name: str
    params: _Params

    def __str__(self) -> str:
        values = self.params.model_dump()
        return self.name + (":" + ",".join(f"{k}={v}" for k, v in values.items()) if values else "")


def defense_names() -> list[str]:
    """Every registered defense name, sorted."""
    return sorted(_REGISTRY)


def parameter_help(name: str) -> str:
    """``name:k=…,k=…`` with each parameter's default, e.g. ``clip:max_norm=…``."""
    fields = _REGISTRY[name].params.model_fields
    parts = [
        f"{key}={'…' if field.is_required() else field.default}" for key, field in fields.items()
    ]
    return name + (":" + ",".join(parts) if parts else "")


def defense_description(name: str) -> str:
    """One line on what the named defense does, and where it applies."""
    entry = _REGISTRY[name]
    text = " ".join((entry.params.__doc__ or "").split())
    return f"{text} ({' and '.join(entry.stages)})"


def parse_defense(text: str, stage: Stage = "simulate") -> DefenseSpec:
    """Parse ``NAME[:k=v,...]``; a bad name or parameter raises one line naming the valid ones."""
    name, _, arguments = text.strip().partition(":")
    name = name.strip().lower()
    if name in ("", "none"):
        raise UserInputError(f"empty defense {text!r}; valid: {', '.join(defense_names())}")
    if name not in _REGISTRY:
        raise UnknownNameError("defense", name, _REGISTRY)
    entry = _REGISTRY[name]
    if stage not in entry.stages:
        raise UserInputError(
            f"defense {name!r} acts on a federated run (aggregation or Flower mods), not on a "
            f"single FedSGD gradient; use it with `fedleak simulate`, then attack the capture"
        )
    values = {}
    for part in filter(None, (p.strip() for p in arguments.split(","))):
        key, equals, value = part.partition("=")
        if not equals:
            raise UserInputError(f"defense {text!r}: write parameters as k=v; {_usage(name)}")
        values[key.strip()] = value.strip()
    fields = entry.params.model_fields
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise UserInputError(
            f"unknown parameter {unknown[0]!r} of defense {name!r}; valid: {', '.join(fields)}"
        )
    try:
        return DefenseSpec(name, entry.params(**values))
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        if first["type"] == "missing":
            raise UserInputError(f"defense {name!r} needs {key}=…; {_usage(name)}") from None
        raise UserInputError(
            f"invalid {name} parameter {key}={values.get(key)!r}: {first['msg'].lower()}"
        ) from None


def parse_defenses(texts: tuple[str, ...] | list[str], stage: Stage) -> tuple[DefenseSpec, ...]:
    """Parse several defenses; the same name twice is refused."""
    specs = tuple(parse_defense(text, stage) for text in texts)
    names = [spec.name for spec in specs]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UserInputError(f"defense {twice[0]!r} given twice; give each defense once")
    return specs


def _usage(name: str) -> str:
    return f"usage: {parameter_help(name)}"
