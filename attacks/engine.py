"""The one optimisation loop behind every gradient-inversion attack.

A dummy batch per restart is pushed through the attacker's copy of the model, its parameter
gradient is computed functionally (``torch.func``) and compared with the observed one; restarts
are a ``vmap`` dimension, so K restarts cost one batched pass rather than K loops.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, grad_and_value, replace_all_batch_norm_modules_, vmap

from attacks.config import AttackConfig
from attacks.initialization import INITIALIZERS
from attacks.labels import LABEL_STRATEGIES
from attacks.objectives import OBJECTIVES
from attacks.priors import total_variation
from attacks.reconstruction import Reconstruction
from attacks.schedules import SCHEDULES
from fedsim.models import build_model
from fedsim.observation import Observation

ProgressCallback = Callable[[float, int, float], None]
"""Called after each step with (fraction of budget used, iteration, best gradient distance)."""


def attacker_model(observation: Observation) -> nn.Module:
    """The architecture the server knows, in the mode the client trained in, frozen."""
    model = build_model(observation.model)
    model.load_state_dict(observation.global_state)
    model.train(observation.train_mode)
    if observation.train_mode:
        # Train-mode batch norm normalises by batch statistics; dropping the running buffers
        # keeps the forward identical and free of in-place updates, which vmap forbids.
        replace_all_batch_norm_modules_(model)
    return model.requires_grad_(False)


class GradientInversion:
    """Reconstruct a client's batch from its update: ``rec = GradientInversion(cfg)(obs)``."""

    def __init__(
        self,
        config: AttackConfig,
        *,
        device: torch.device | str = "cpu",
        seed: int = 0,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.seed = seed
        self.progress = progress

    def __call__(self, observation: Observation) -> Reconstruction:
        """Run the search on one observation and return the best restart's images."""
        cfg, device = self.config, self.device
        joint_labels = cfg.label_strategy == "optimize"
        model = attacker_model(observation).to(device)
        names = observation.parameter_names()
        params = {n: observation.global_state[n].to(device) for n in names}
        buffers = {n: observation.global_state[n].to(device) for n, _ in model.named_buffers()}
        target = [observation.gradient()[n].to(device) for n in names]
        distance = OBJECTIVES[cfg.objective]

        def objective(
            dummy: torch.Tensor, label_param: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            # Soft targets: one-hot when labels are fixed, a softmax when searched (DLG).
            soft_labels = label_param.softmax(-1) if joint_labels else label_param

            def training_loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
                logits = functional_call(model, (p, buffers), (dummy,))
                return nn.functional.cross_entropy(logits, soft_labels)

            dummy_grad = grad(training_loss)(params)
            gap = distance([dummy_grad[n] for n in names], target)
            return gap + cfg.tv_weight * total_variation(dummy), gap

        step_fn = vmap(
            grad_and_value(objective, argnums=(0, 1), has_aux=True), randomness="different"
        )
        mean = torch.tensor(observation.mean, device=device).view(-1, 1, 1)
        std = torch.tensor(observation.std, device=device).view(-1, 1, 1)
        low, high = (0 - mean) / std, (1 - mean) / std

        generator = torch.Generator().manual_seed(self.seed)
        batch, classes = observation.batch_size, observation.model.num_classes
        shape = (cfg.restarts, batch, *observation.model.image_shape)
        dummy = INITIALIZERS[cfg.init](shape, generator).to(device)
        dummy = torch.max(torch.min(dummy, high), low).requires_grad_(True)
        if joint_labels:
            label_param = torch.randn(cfg.restarts, batch, classes, generator=generator)
        else:
            labels = LABEL_STRATEGIES[cfg.label_strategy](observation)
            one_hot = nn.functional.one_hot(labels, classes).float()
            label_param = one_hot.expand(cfg.restarts, -1, -1).clone()
        label_param = label_param.to(device).requires_grad_(joint_labels)
        searched = [dummy, label_param] if joint_labels else [dummy]
        optimizer = _make_optimizer(cfg, searched)
        schedule = SCHEDULES[cfg.schedule]
        gaps = torch.full((cfg.restarts,), float("inf"))

        def closure() -> torch.Tensor:
            nonlocal gaps
            optimizer.zero_grad()
            (image_grad, label_grad), (total, gap) = step_fn(dummy, label_param)
            dummy.grad = image_grad.sign() if cfg.signed else image_grad
            if joint_labels:
                label_param.grad = label_grad
            gaps = gap.detach()
            return total.sum()

        history: list[float] = []
        start = time.perf_counter()
        iteration, fraction = 0, 0.0
        while iteration < cfg.iterations and fraction < 1.0:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * schedule(fraction)
            optimizer.step(closure)
            if cfg.boxed:
                with torch.no_grad():
                    dummy.copy_(torch.max(torch.min(dummy, high), low))
            iteration += 1
            history.append(float(gaps.min()))
            fraction = iteration / cfg.iterations
            if cfg.time_budget_s is not None:
                fraction = max(fraction, (time.perf_counter() - start) / cfg.time_budget_s)
            if self.progress is not None:
                self.progress(min(fraction, 1.0), iteration, history[-1])
        _, (_, final_gaps) = step_fn(dummy.detach(), label_param.detach())
        wall_s = time.perf_counter() - start
        best = int(final_gaps.argmin())
        pixels = (dummy.detach()[best] * std + mean).clamp(0, 1)
        return Reconstruction(
            images=pixels.cpu(),
            labels=label_param.detach()[best].argmax(-1).cpu(),
            gradient_distance=float(final_gaps[best]),
            restart_distances=tuple(final_gaps.tolist()),
            history=tuple(history),
            iterations=iteration,
            wall_s=wall_s,
            config=cfg.model_dump(),
        )


def _make_optimizer(cfg: AttackConfig, searched: list[torch.Tensor]) -> torch.optim.Optimizer:
    if cfg.optimizer == "lbfgs":
        return torch.optim.LBFGS(searched, lr=cfg.lr)
    return torch.optim.Adam(searched, lr=cfg.lr)
