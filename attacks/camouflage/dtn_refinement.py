"""Refine the DTN on Mitsuba renders of the attack's own pattern while the attack runs.

The DTN learnt the renderer on flat colours and follows unseen patterns closely (SSIM 0.983), but
an attack optimises against DTN and detector together and so finds where the DTN is wrong: a
64×64 pattern scored AP@0.5 0.824 through the DTN on its own training views and 0.982 when
rendered (benchmarks/README.md, suite dta). Every ``every`` attack steps the refiner renders the
current pattern on some training views in Mitsuba (the renderer stays a black box: only its
images are used), keeps those (view, η, render) triplets, and gives the DTN a few Adam steps on
all it has kept, so the pipeline keeps following the renderer where the attack goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from attacks.camouflage.attack import AttackScenes, image_batch
from attacks.camouflage.dtn import DTN
from attacks.camouflage.dtn_training import car_mse
from attacks.camouflage.renderer import render_image
from attacks.camouflage.texture import surface_etas
from fedsim.errors import UserInputError


@dataclass(frozen=True)
class Refinement:
    """How often and how much: every ``every`` attack steps, ``views`` training views rendered
    at ``spp`` samples per pixel, then ``steps`` Adam steps of ``batch_size`` kept triplets at
    learning rate ``lr``."""

    every: int
    views: int = 8
    steps: int = 20
    batch_size: int = 8
    lr: float = 1e-4
    spp: int = 8

    def __post_init__(self) -> None:
        for name in ("every", "views", "steps", "batch_size", "spp"):
            if getattr(self, name) < 1:
                raise UserInputError(
                    f"refinement {name} must be a positive integer, got {getattr(self, name)}"
                )
        if self.lr <= 0:
            raise UserInputError(f"refinement lr must be positive, got {self.lr}")


@dataclass
class DTNRefiner:
    """Refines ``dtn`` in place on renders of the attack's pattern on ``scenes``' views.

    ``errors`` holds, per refresh, the DTN's car-pixel MSE on that refresh's fresh renders before
    it trained on them: how far the pipeline had drifted from the renderer on the attack's
    pattern. Call it after every attack step; it acts on every ``refinement.every``-th.
    """

    dtn: DTN
    scenes: AttackScenes
    refinement: Refinement
    seed: int = 0
    errors: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._generator = torch.Generator().manual_seed(self.seed)
        self._optimiser = torch.optim.Adam(self.dtn.parameters(), lr=self.refinement.lr)
        self._kept: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def __call__(self, step: int, pattern: torch.Tensor) -> None:
        """Refresh after attack step ``step`` if it is due, with ``pattern`` (3, s, s)."""
        if step % self.refinement.every:
            return
        fresh = self._render(pattern.detach())
        self.errors.append(self._error(fresh))
        self._kept.extend(fresh)
        self._train()

    def _render(self, pattern: torch.Tensor) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """(view index, η, Mitsuba's render) of ``pattern`` on a random draw of training views."""
        scenes, count = self.scenes, min(self.refinement.views, len(self.scenes.views))
        chosen = torch.randperm(len(scenes.views), generator=self._generator)[:count].tolist()
        size = scenes.x_ref.shape[-1]
        renders = image_batch(
            [
                render_image(scenes.views[i], pattern, size, self.refinement.spp, scenes.tile_m)
                for i in chosen
            ]
        )
        etas = surface_etas(pattern, [scenes.paint[i] for i in chosen], scenes.masks[chosen])
        return list(zip(chosen, etas, renders, strict=True))

    def _error(self, triplets: list[tuple[int, torch.Tensor, torch.Tensor]]) -> float:
        with torch.no_grad():
            return float(self._loss(triplets))

    def _train(self) -> None:
        self.dtn.train().requires_grad_(True)
        for _ in range(self.refinement.steps):
            picks = torch.randint(
                len(self._kept), (self.refinement.batch_size,), generator=self._generator
            )
            loss = self._loss([self._kept[i] for i in picks])
            self._optimiser.zero_grad(set_to_none=True)
            loss.backward()
            self._optimiser.step()
        self.dtn.eval().requires_grad_(False)

    def _loss(self, triplets: list[tuple[int, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """The DTN's car-pixel MSE on (view index, η, render) triplets."""
        views, etas, renders = zip(*triplets, strict=True)
        views = torch.tensor(views)
        masks = self.scenes.masks[views]
        predicted = self.dtn(self.scenes.x_ref[views], masks, torch.stack(etas))
        return car_mse(predicted, torch.stack(renders), masks)
