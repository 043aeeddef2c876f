"""The defenses of a Flower run: from ``SimulationConfig.defenses`` to fedsim's hooks.

:func:`defend_run` is the :data:`fedsim.flower.defense_hooks.Defend` that ``fedleak simulate``
and the apps ``flwr run .`` loads pass to fedsim.
"""

from __future__ import annotations

from flwr.clientapp.mod import LocalDpMod, fixedclipping_mod
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideAdaptiveClipping,
    DifferentialPrivacyServerSideFixedClipping,
    Strategy,
)

from defenses.dp_sgd import dp_sgd_trainer
from defenses.model_changes import defended_dropout, needs_group_norm
from defenses.secagg.flower import FlowerSecAgg
from defenses.soteria import soteria_transform
from defenses.specs import (
    DefenseSpec,
    DpSgd,
    FlowerAdaptiveClipping,
    FlowerFixedClipping,
    LocalDp,
    SecAgg,
    Soteria,
    parse_defenses,
)
from defenses.update_transforms import update_transform
from fedsim.errors import UserInputError
from fedsim.flower.config import SimulationConfig
from fedsim.flower.defense_hooks import DefenseHooks, StrategyWrapper

# Flower's DP acts on each client's arrays (clipping, per-reply noise): nothing to act on when
# the server only gets masked vectors.
_NOT_WITH_SECAGG = ("flower-dp-client", "flower-dp-server", "flower-dp-adaptive", "local-dp")


def defend_run(config: SimulationConfig) -> tuple[SimulationConfig, DefenseHooks]:
    """The run to start under ``config.defenses`` and the hooks fedsim applies.

    Model changes (a dropout rate, GroupNorm for DP) go into the returned config so that
    server, clients and attackers build the same model; after local training Soteria prunes
    the update's last-layer columns, then the update transforms act in the order given;
    Flower's DP wrappers wrap FedAvg in the order given.
    """
    specs = parse_defenses(config.defenses, "simulate")
    config = config.model_copy(
        update={
            "defenses": tuple(str(spec) for spec in specs),
            "dropout": defended_dropout(specs, config.dropout),
            "dp_compatible": config.dp_compatible or needs_group_norm(specs, config.model),
        }
    )
    trainers = [dp_sgd_trainer(spec.params) for spec in specs if isinstance(spec.params, DpSgd)]
    secure = [FlowerSecAgg(s.params, config.clients) for s in specs if isinstance(s.params, SecAgg)]
    clashing = [spec.name for spec in specs if spec.name in _NOT_WITH_SECAGG]
    if secure and clashing:
        raise UserInputError(
            f"defense {clashing[0]!r} acts on individual updates, which secagg hides from the "
            "server; combine secagg with dp-sgd, clip, gaussian, prune or quantize instead"
        )
    mods = []
    wrappers: list[StrategyWrapper] = []
    for spec in specs:
        if spec.name == "flower-dp-client":
            mods.append(fixedclipping_mod)
        if isinstance(spec.params, LocalDp):
            p = spec.params
            mods.append(LocalDpMod(p.clipping_norm, p.sensitivity, p.epsilon, p.delta))
        wrapper = _strategy_wrapper(spec)
        if wrapper is not None:
            wrappers.append(wrapper)
    representation = [soteria_transform(s.params) for s in specs if isinstance(s.params, Soteria)]
    hooks = DefenseHooks(
        names=config.defenses,
        train=trainers[0] if trainers else None,
        protect_representation=representation[0] if representation else None,
        protect_update=update_transform(specs),
        client_mods=tuple(mods),
        wrap_strategy=_chain(wrappers) if wrappers else None,
        secure_aggregation=secure[0] if secure else None,
    )
    return config, hooks


def _strategy_wrapper(spec: DefenseSpec) -> StrategyWrapper | None:
    """Flower's central-DP strategy wrapper a defense names, if any."""
    params = spec.params
    if isinstance(params, FlowerFixedClipping):
        wrapper = (
            DifferentialPrivacyClientSideFixedClipping
            if spec.name == "flower-dp-client"
            else DifferentialPrivacyServerSideFixedClipping
        )
        return lambda strategy, clients: wrapper(
            strategy, params.noise_multiplier, params.clipping_norm, clients
        )
    if isinstance(params, FlowerAdaptiveClipping):
        return lambda strategy, clients: DifferentialPrivacyServerSideAdaptiveClipping(
            strategy,
            params.noise_multiplier,
            clients,
            initial_clipping_norm=params.initial_clipping_norm,
            target_clipped_quantile=params.target_clipped_quantile,
            clip_norm_lr=params.clip_norm_lr,
        )
    return None


def _chain(wrappers: list[StrategyWrapper]) -> StrategyWrapper:
    def wrap(strategy: Strategy, clients: int) -> Strategy:
        for wrapper in wrappers:
            strategy = wrapper(strategy, clients)
        return strategy

    return wrap
