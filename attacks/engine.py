"""The one optimisation loop behind every gradient-inversion attack.

A dummy batch per restart is pushed through the attacker's copy of the model, its parameter
gradient is computed functionally (``torch.func``) and compared with the observed one; restarts
are a ``vmap`` dimension, so K restarts cost one batched pass rather than K loops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.func import grad_and_value, vmap
from torch.utils._pytree import tree_map

from attacks.config import AttackConfig
from attacks.dropout_masks import Masks, clamp_masks_, initial_masks, mask_shapes, oracle_masks
from attacks.initialization import INITIALIZERS
from attacks.labels import LABEL_STRATEGIES
from attacks.matching import gradient_matching_objective
from attacks.reconstruction import Reconstruction
from attacks.schedules import SCHEDULES, Plateau
from fedsim.models import build_model
from fedsim.observation import Observation

ProgressCallback = Callable[[float, int, float], None]
"""Called after each step with (fraction of budget used, iteration, best gradient distance)."""


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

    def __call__(
        self,
        observation: Observation,
        *,
        oracle_masks: Mapping[str, torch.Tensor] | None = None,
    ) -> Reconstruction:
        """Run the search on one observation and return the best restart's images.

        ``oracle_masks`` (the client's true dropout masks, from its ground truth) are read only
        by a config with ``dropout_masks="oracle"``, the WIIG upper bound.
        """
        cfg = self.config
        box = PixelBox(observation.mean, observation.std, self.device)
        generator = torch.Generator().manual_seed(self.seed)
        dummy, label_param = self._starting_point(observation, box, generator)
        masks = self._dropout_masks(observation, generator, oracle_masks)
        step_fn = self._step_function(observation)
        searched = [dummy, label_param] if label_param.requires_grad else [dummy]
        if cfg.dropout_masks == "search":
            searched += list(masks.values())
        optimizer = _make_optimizer(cfg, searched)
        schedule = SCHEDULES[cfg.schedule]
        plateau = Plateau(cfg, active=cfg.schedule == "plateau")
        gaps = torch.full((cfg.restarts,), float("inf"))

        def closure() -> torch.Tensor:
            nonlocal gaps
            optimizer.zero_grad()
            (image_grad, label_grad, mask_grads), (total, gap) = step_fn(dummy, label_param, masks)
            dummy.grad = image_grad.sign() if cfg.signed else image_grad
            if label_param.requires_grad:
                label_param.grad = label_grad
            if cfg.dropout_masks == "search":
                for name, mask in masks.items():
                    mask.grad = mask_grads[name]
            gaps = gap.detach()
            return total.sum().detach()

        history: list[float] = []
        start = time.perf_counter()
        iteration, fraction = 0, 0.0
        while iteration < cfg.iterations and fraction < 1.0 and not plateau.stopped:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * schedule(fraction) * plateau.factor
            loss = optimizer.step(closure)
            if cfg.boxed:
                box.clamp_(dummy)
            clamp_masks_(masks)
            iteration += 1
            history.append(float(gaps.min()))
            plateau.update(float(loss), iteration)
            fraction = iteration / cfg.iterations
            if cfg.time_budget_s is not None:
                elapsed = time.perf_counter() - start
                fraction = max(fraction, elapsed / cfg.time_budget_s)
                # Stop unless another step and the final scoring pass fit in the budget.
                if elapsed * (iteration + 2) / iteration > cfg.time_budget_s:
                    fraction = 1.0
            if self.progress is not None:
                done = 1.0 if plateau.stopped else min(fraction, 1.0)
                self.progress(done, iteration, history[-1])
        _, (_, final_gaps) = step_fn(dummy.detach(), label_param.detach(), _detached(masks))
        wall_s = time.perf_counter() - start
        best = int(final_gaps.argmin())
        return Reconstruction(
            images=box.to_pixels(dummy.detach()[best]).cpu(),
            labels=label_param.detach()[best].argmax(-1).cpu(),
            gradient_distance=float(final_gaps[best]),
            restart_distances=tuple(final_gaps.tolist()),
            history=tuple(history),
            iterations=iteration,
            wall_s=wall_s,
            config=cfg.model_dump(),
        )

    def _starting_point(
        self, observation: Observation, box: PixelBox, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Dummy images (restarts, batch, C, H, W) and label parameters (restarts, batch, classes).

        Label parameters are one-hot and frozen for fixed labels, or logits searched jointly.
        """
        cfg = self.config
        batch, classes = observation.examples_seen, observation.model.num_classes
        shape = (cfg.restarts, batch, *observation.model.image_shape)
        dummy = INITIALIZERS[cfg.init](shape, generator).to(self.device)
        box.clamp_(dummy)
        if cfg.label_strategy == "optimize":
            label_param = torch.randn(cfg.restarts, batch, classes, generator=generator)
        else:
            labels = LABEL_STRATEGIES[cfg.label_strategy](observation)
            one_hot = nn.functional.one_hot(labels, classes).float()
            label_param = one_hot.expand(cfg.restarts, -1, -1).clone()
        joint = cfg.label_strategy == "optimize"
        return dummy.requires_grad_(True), label_param.to(self.device).requires_grad_(joint)

    def _dropout_masks(
        self,
        observation: Observation,
        generator: torch.Generator,
        oracle: Mapping[str, torch.Tensor] | None,
    ) -> Masks:
        """Per dropout layer, (restarts, images, ...) masks: searched, given, or none (off)."""
        cfg = self.config
        if cfg.dropout_masks == "off" or observation.model.dropout == 0:
            return {}
        model = build_model(observation.model)
        shapes = mask_shapes(model, observation.model.image_shape, observation.examples_seen)
        if cfg.dropout_masks == "oracle":
            masks = oracle_masks(oracle, shapes, cfg.restarts)
        else:
            masks = initial_masks(shapes, observation.model.dropout, cfg.restarts, generator)
        searched = cfg.dropout_masks == "search"
        return {n: m.to(self.device).requires_grad_(searched) for n, m in masks.items()}

    def _step_function(self, observation: Observation) -> Callable:
        """Gradients of every restart's objective w.r.t. images, labels and masks, batched."""
        objective = gradient_matching_objective(observation, self.config, self.device)
        joint = self.config.label_strategy == "optimize"

        def restart_objective(
            dummy: torch.Tensor, label_param: torch.Tensor, masks: Masks
        ) -> tuple[torch.Tensor, torch.Tensor]:
            return objective(dummy, label_param.softmax(-1) if joint else label_param, masks)

        with_grads = grad_and_value(restart_objective, argnums=(0, 1, 2), has_aux=True)
        if self.config.restarts > 1:
            return vmap(with_grads, randomness="different")

        def single_restart(dummy: torch.Tensor, label_param: torch.Tensor, masks: Masks) -> tuple:
            # One restart needs no vmap, whose batching rules cost ~10% per step on CPU.
            first = {name: mask[0] for name, mask in masks.items()}
            grads, values = with_grads(dummy[0], label_param[0], first)
            return _unsqueeze(grads), _unsqueeze(values)

        return single_restart


class PixelBox:
    """The valid pixel range [0, 1] expressed in the model's normalised input space."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device):
        self.mean = torch.tensor(mean, device=device).view(-1, 1, 1)
        self.std = torch.tensor(std, device=device).view(-1, 1, 1)
        self.low, self.high = (0 - self.mean) / self.std, (1 - self.mean) / self.std

    @torch.no_grad()
    def clamp_(self, images: torch.Tensor) -> None:
        """Project normalised images into the box, in place."""
        images.copy_(torch.max(torch.min(images, self.high), self.low))

    def to_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """De-normalise to pixels in [0, 1]."""
        return (images * self.std + self.mean).clamp(0, 1)


def _unsqueeze(values: tuple) -> tuple:
    """Give every tensor of a (possibly nested) tuple a leading restart dimension of 1."""
    return tree_map(lambda t: t.unsqueeze(0), values)


def _detached(masks: Masks) -> Masks:
    return {name: mask.detach() for name, mask in masks.items()}


def _make_optimizer(cfg: AttackConfig, searched: list[torch.Tensor]) -> torch.optim.Optimizer:
    if cfg.optimizer == "lbfgs":
        return torch.optim.LBFGS(searched, lr=cfg.lr)
    return torch.optim.Adam(searched, lr=cfg.lr)
