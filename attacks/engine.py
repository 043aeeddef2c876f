"""The one optimisation loop behind every gradient-inversion attack.

A dummy batch per restart (pixels, or the images a generator makes from a searched stage input)
is pushed through the attacker's copy of the model, its parameter gradient is computed
functionally (``torch.func``) and compared with the observed one; restarts are a ``vmap``
dimension, so K restarts cost one batched pass rather than K loops. Generator searches run
the loop once per stage (GIFD), each stage starting where the previous one ended; a
defense-aware search of an update with recorded noise stops descending at the first stage
whose distance reaches the noise floor (:mod:`attacks.noise_floor`), which then keeps the later
stages' budget and is returned. A generator is any module with ``latent_dim``, ``stages`` and
``from_stage`` (``StagedGenerator``, ``BigGANStages``); a class-conditional one (``conditional``
true) also has ``condition(labels)``, called with the label strategy's labels before the
search.
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
from attacks.noise_floor import NoiseFloor, noise_floor
from attacks.reconstruction import Reconstruction
from attacks.schedules import SCHEDULES, Plateau
from attacks.search_spaces import GeneratorSpace, PixelBox, PixelSpace, project_to_sphere
from fedsim.errors import UserInputError
from fedsim.models import build_model
from fedsim.observation import Observation

ProgressCallback = Callable[[float, int, float], None]
"""Called after each step with (fraction of budget used, iteration, best gradient distance)."""


def _stage_steps(iterations: int, shares: list[float]) -> list[int]:
    """Each stage's steps: its share of ``iterations``, rounded at the stages' boundaries and
    at least one, taken back from the longest stages where those minimums overrun the whole."""
    bounds = [round(iterations * sum(shares[: index + 1])) for index in range(len(shares))]
    steps = [max(1, end - begin) for begin, end in zip([0, *bounds], bounds, strict=False)]
    while sum(steps) > max(iterations, len(steps)):
        steps[steps.index(max(steps))] -= 1
    return steps


class GradientInversion:
    """Reconstruct a client's batch from its update: ``rec = GradientInversion(cfg)(obs)``."""

    def __init__(
        self,
        config: AttackConfig,
        *,
        device: torch.device | str = "cpu",
        seed: int = 0,
        progress: ProgressCallback | None = None,
        generator: nn.Module | None = None,
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.seed = seed
        self.generator = None if generator is None else generator.to(self.device)
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
        rng = torch.Generator().manual_seed(self.seed)
        if cfg.search == "generator" and self.generator is None:
            raise UserInputError(
                f"attack {cfg.name!r} searches a generator's inputs; none was given "
                "(pass --generator PATH, or train one with `fedleak train-generator`)"
            )
        start = self._start(observation, box, rng)
        label_param = self._label_parameters(observation, rng)
        self._condition_generator(label_param)
        masks = self._dropout_masks(observation, rng, oracle_masks)
        objective = gradient_matching_objective(observation, cfg, self.device)
        stages = self._stages()
        shares = self._stage_shares(len(stages))
        steps = _stage_steps(cfg.iterations, shares)
        floor = self._noise_floor(observation, len(stages))
        began = time.perf_counter()
        history: list[float] = []
        best: tuple[float, torch.Tensor, int, int] | None = None
        iterations, distances, stage_distances, stage_iterations = 0, (), [], []
        for index, stage in enumerate(stages):
            space = self._space(stage, start, box)
            step_fn = self._step_function(objective, space)
            stage_history = self._optimise(
                space, step_fn, label_param, masks, sum(shares[:index]), shares[index], steps[index]
            )
            gaps = self._final_gaps(step_fn, space, label_param, masks)
            # Discrepancy principle: a stage already as close as the truth itself would be fits
            # the noise from here on; it keeps the later stages' budget and is the answer.
            settled = floor is not None and float(gaps.min()) <= floor.high
            if settled and index + 1 < len(stages):
                stage_history += self._optimise(
                    space,
                    step_fn,
                    label_param,
                    masks,
                    sum(shares[: index + 1]),
                    sum(shares[index + 1 :]),
                    sum(steps[index + 1 :]),
                )
                gaps = self._final_gaps(step_fn, space, label_param, masks)
            history += stage_history
            iterations += len(stage_history)
            stage_iterations.append(len(stage_history))
            restart = int(gaps.argmin())
            lowest = float(gaps[restart])
            stage_distances.append(lowest)
            if best is None or lowest < best[0] or settled:
                images = space.images(space.params.detach()[restart])
                best = (lowest, images, restart, stage)
                distances = tuple(gaps.tolist())
            if settled:
                break
            start = self._next_start(space)
        assert best is not None
        gap, images, restart, stage = best
        return Reconstruction(
            images=box.to_pixels(images).cpu(),
            labels=label_param.detach()[restart].argmax(-1).cpu(),
            gradient_distance=gap,
            restart_distances=distances,
            history=tuple(history),
            iterations=iterations,
            wall_s=time.perf_counter() - began,
            config={
                **cfg.model_dump(),
                "best_stage": stage,
                "stage_distances": stage_distances,
                "stage_iterations": stage_iterations,
                "noise_floor": None if floor is None else floor.describe(),
            },
        )

    def _noise_floor(self, observation: Observation, stage_count: int) -> NoiseFloor | None:
        """The floor a defense-aware, cosine-matching search of ``stage_count`` generator stages
        stops descending at (:mod:`attacks.noise_floor`); None for any other search, or without
        recorded noise."""
        cfg = self.config
        staged = cfg.search == "generator" and stage_count > 1
        if not (staged and cfg.defense_aware and cfg.objective == "cosine"):
            return None
        return noise_floor(observation)

    @staticmethod
    def _final_gaps(
        step_fn: Callable,
        space: PixelSpace | GeneratorSpace,
        label_param: torch.Tensor,
        masks: Masks,
    ) -> torch.Tensor:
        """Every restart's gradient distance at the search's current point."""
        _, (_, gaps) = step_fn(space.params.detach(), label_param.detach(), _detached(masks))
        return gaps

    def _optimise(
        self,
        space: PixelSpace | GeneratorSpace,
        step_fn: Callable,
        label_param: torch.Tensor,
        masks: Masks,
        begun: float,
        share: float,
        budget: int,
    ) -> list[float]:
        """One optimisation loop over ``space`` of at most ``budget`` steps and a ``share`` of
        the time budget, ``begun`` of it already spent by earlier stages (fractions of the
        whole)."""
        cfg = self.config
        searched = [space.params, label_param] if label_param.requires_grad else [space.params]
        if cfg.dropout_masks == "search":
            searched += list(masks.values())
        optimizer = _make_optimizer(cfg, searched)
        schedule = SCHEDULES[cfg.schedule]
        time_budget = None if cfg.time_budget_s is None else cfg.time_budget_s * share
        plateau = Plateau(cfg, budget, active=cfg.schedule == "plateau")
        gaps = torch.full((cfg.restarts,), float("inf"))

        def closure() -> torch.Tensor:
            nonlocal gaps
            optimizer.zero_grad()
            (params_grad, label_grad, mask_grads), (total, gap) = step_fn(
                space.params, label_param, masks
            )
            space.params.grad = params_grad.sign() if cfg.signed else params_grad
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
        while iteration < budget and fraction < 1.0 and not plateau.stopped:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * schedule(fraction) * plateau.factor
            loss = optimizer.step(closure)
            space.project_()
            if cfg.dropout_masks == "search":
                clamp_masks_(masks)
            iteration += 1
            history.append(float(gaps.min()))
            plateau.update(float(loss), iteration)
            fraction = iteration / budget
            if time_budget is not None:
                elapsed = time.perf_counter() - start
                fraction = max(fraction, elapsed / time_budget)
                # Stop unless another step and the final scoring pass fit in the budget.
                if elapsed * (iteration + 2) / iteration > time_budget:
                    fraction = 1.0
            if self.progress is not None:
                done = 1.0 if plateau.stopped else min(fraction, 1.0)
                used = begun + done * share
                self.progress(used, len(history), history[-1])
        return history

    def _start(self, observation: Observation, box: PixelBox, rng: torch.Generator) -> torch.Tensor:
        """The first search point, restarts first: dummy images, or generator latents."""
        cfg = self.config
        batch = (cfg.restarts, observation.examples_seen)
        if cfg.search == "generator":
            latents = torch.randn(*batch, self.generator.latent_dim, generator=rng)
            return project_to_sphere(latents).to(self.device)
        dummy = INITIALIZERS[cfg.init]((*batch, *observation.model.image_shape), rng)
        dummy = dummy.to(self.device)
        box.clamp_(dummy)
        return dummy

    def _stages(self) -> list[int]:
        """The generator stages searched in turn ([0] for pixels: one plain search), and the
        pixel stage after them (numbered as the generator's stage count) where configured."""
        if self.config.search == "pixels":
            return [0]
        available = len(self.generator.stages)
        searched = min(self.config.generator_stages or available, available)
        pixels = [available] if self.config.pixel_stage and searched == available else []
        return list(range(searched)) + pixels

    def _stage_shares(self, stage_count: int) -> list[float]:
        """Each stage's fraction of the budget: equal, or the configured last stage's share and
        the rest split equally."""
        last = self.config.last_stage_share
        if last is None or stage_count == 1:
            return [1 / stage_count] * stage_count
        return [(1 - last) / (stage_count - 1)] * (stage_count - 1) + [last]

    def _space(self, stage: int, start: torch.Tensor, box: PixelBox) -> PixelSpace | GeneratorSpace:
        """The search space of one stage, starting at ``start``."""
        cfg = self.config
        if cfg.search == "pixels":
            return PixelSpace(start, box, boxed=cfg.boxed)
        if stage == len(self.generator.stages):  # the pixel stage, in range like generated images
            return PixelSpace(start, box, boxed=True)
        radius = cfg.feature_radius * start.flatten(2).abs().sum(-1) if stage else None
        return GeneratorSpace(self.generator, stage, start, box, radius=radius)

    def _next_start(self, space: PixelSpace | GeneratorSpace) -> torch.Tensor:
        """The next stage's start: the feature map this stage's input produces (after the last
        generator stage, its images)."""
        if not isinstance(space, GeneratorSpace):
            return space.params.detach()
        with torch.no_grad():
            if space.stage + 1 == len(self.generator.stages):  # the pixel stage's start
                return torch.stack([space.images(params) for params in space.params.detach()])
            block = self.generator.stages[space.stage]
            return vmap(block)(space.params.detach())

    def _label_parameters(self, observation: Observation, rng: torch.Generator) -> torch.Tensor:
        """Label parameters (restarts, batch, classes): one-hot and frozen for fixed labels, or
        logits searched jointly."""
        cfg = self.config
        batch, classes = observation.examples_seen, observation.model.num_classes
        if cfg.label_strategy == "optimize":
            label_param = torch.randn(cfg.restarts, batch, classes, generator=rng)
        else:
            labels = LABEL_STRATEGIES[cfg.label_strategy](observation)
            one_hot = nn.functional.one_hot(labels, classes).float()
            label_param = one_hot.expand(cfg.restarts, -1, -1).clone()
        joint = cfg.label_strategy == "optimize"
        return label_param.to(self.device).requires_grad_(joint)

    def _condition_generator(self, label_param: torch.Tensor) -> None:
        """Tell a class-conditional generator (``conditional`` true: BigGAN, a conditional
        DCGAN) which class each image is: the label strategy's labels, fixed for the search."""
        if self.config.search != "generator" or not getattr(self.generator, "conditional", False):
            return
        if label_param.requires_grad:
            raise UserInputError(
                f"attack {self.config.name!r} searches the labels, but a class-conditional "
                "generator needs them before the search: use labels given, idlg or estimate"
            )
        self.generator.condition(label_param[0].argmax(-1))

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

    def _step_function(self, objective: Callable, space: PixelSpace | GeneratorSpace) -> Callable:
        """Gradients of every restart's objective w.r.t. the searched tensor, labels and masks,
        batched over restarts."""
        joint = self.config.label_strategy == "optimize"

        def restart_objective(
            params: torch.Tensor, label_param: torch.Tensor, masks: Masks
        ) -> tuple[torch.Tensor, torch.Tensor]:
            soft_labels = label_param.softmax(-1) if joint else label_param
            return objective(space.images(params), soft_labels, masks)

        with_grads = grad_and_value(restart_objective, argnums=(0, 1, 2), has_aux=True)
        if self.config.restarts > 1:
            return vmap(with_grads, randomness="different")

        def single_restart(params: torch.Tensor, label_param: torch.Tensor, masks: Masks) -> tuple:
            # One restart needs no vmap, whose batching rules cost ~10% per step on CPU.
            first = {name: mask[0] for name, mask in masks.items()}
            grads, values = with_grads(params[0], label_param[0], first)
            return _unsqueeze(grads), _unsqueeze(values)

        return single_restart


def _unsqueeze(values: tuple) -> tuple:
    """Give every tensor of a (possibly nested) tuple a leading restart dimension of 1."""
    return tree_map(lambda t: t.unsqueeze(0), values)


def _detached(masks: Masks) -> Masks:
    return {name: mask.detach() for name, mask in masks.items()}


def _make_optimizer(cfg: AttackConfig, searched: list[torch.Tensor]) -> torch.optim.Optimizer:
    if cfg.optimizer == "lbfgs":
        return torch.optim.LBFGS(searched, lr=cfg.lr)
    return torch.optim.Adam(searched, lr=cfg.lr)
