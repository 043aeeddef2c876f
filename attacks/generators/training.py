"""Train a staged DCGAN generator on a dataset (or a subset of its classes).

Two recipes. The unconditional one is DCGAN's (non-saturating loss, batch-norm critic). The
class-conditional one (``conditional=True``) is the projection cGAN recipe that gets the most
out of a small budget: hinge loss, a spectral-normalised projection critic, and an exponential
moving average of the generator's weights (decay 0.999 after a warm-up), whose batch-norm
statistics are recomputed at the end ("standing statistics", as BigGAN does) — that average is
what comes back.

With ``state_path`` the whole training state is written there after every epoch and a run
that finds one resumes from it, so a training may span several sessions; a state written by
other settings is refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional
from torch.optim.swa_utils import AveragedModel

from attacks.generators.dcgan import WIDTH, Critic, StagedGenerator
from fedsim.data import ImageDataset
from fedsim.errors import UserInputError

Progress = Callable[[float, dict[str, float]], None]
"""Called after each batch with (fraction done, current losses)."""

EMA_DECAY = 0.999
STANDING_BATCHES = 40  # batches of fresh latents that set the averaged generator's BN statistics


@dataclass(frozen=True)
class _Settings:
    """What a resumed state must agree on."""

    dataset: str
    classes: tuple[int, ...]
    epochs: int
    batch_size: int
    width: int
    conditional: bool
    seed: int


def train_generator(
    data: ImageDataset,
    *,
    classes: Sequence[int] | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    width: int = WIDTH,
    conditional: bool = False,
    seed: int = 0,
    device: torch.device | str = "cpu",
    state_path: Path | None = None,
    progress: Progress | None = None,
) -> StagedGenerator:
    """Adversarial training (Adam 2e-4, β₁ 0.5) on [0, 1] images; the generator comes back on
    the CPU, frozen. The chosen rows are decoded once and kept on ``device`` as bytes."""
    torch.manual_seed(seed)
    all_labels = data.labels().numpy()
    rows = np.flatnonzero(np.isin(all_labels, classes)) if classes else np.arange(len(all_labels))
    if len(rows) < batch_size:
        raise UserInputError(f"{len(rows)} training images for batch size {batch_size}")
    pixels = (data.images(rows.tolist())[0] * 255).round().to(torch.uint8).to(device)
    labels = torch.from_numpy(all_labels[rows]).long().to(device)
    num_classes = data.spec.num_classes if conditional else 0
    shape = data.spec.image_shape
    generator = StagedGenerator(shape, width=width, num_classes=num_classes).to(device)
    critic = Critic(shape, width, num_classes).to(device)
    g_opt = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    c_opt = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.999))
    rng = np.random.default_rng(seed)
    settings = _Settings(
        data.spec.name, tuple(classes or ()), epochs, batch_size, width, conditional, seed
    )
    modules: dict[str, nn.Module | torch.optim.Optimizer] = {
        "generator": generator,
        "critic": critic,
        "g_opt": g_opt,
        "c_opt": c_opt,
    }
    if conditional:
        ema = AveragedModel(generator, avg_fn=_ema)
        modules["ema"] = ema
    first_epoch = _resume(state_path, settings, modules, rng) if state_path else 0
    steps_per_epoch = len(rows) // batch_size
    total, done = epochs * steps_per_epoch, first_epoch * steps_per_epoch
    for epoch in range(first_epoch, epochs):
        order = torch.from_numpy(rng.permutation(len(rows))).to(device)
        for step in range(steps_per_epoch):
            chosen = order[step * batch_size : (step + 1) * batch_size]
            real = pixels[chosen].float() / 127.5 - 1
            real_labels, fake_labels = labels[chosen], None
            if conditional:  # fake images take the batch's classes, shuffled
                fake_labels = real_labels[torch.randperm(batch_size, device=device)]
                generator.condition(fake_labels)
            fake = generator(torch.randn(batch_size, generator.latent_dim, device=device))
            c_opt.zero_grad()
            c_loss = _critic_loss(
                critic(real, real_labels), critic(fake.detach(), fake_labels), conditional
            )
            c_loss.backward()
            c_opt.step()
            g_opt.zero_grad()
            g_loss = _generator_loss(critic(fake, fake_labels), conditional)
            g_loss.backward()
            g_opt.step()
            if conditional:
                ema.update_parameters(generator)
            done += 1
            # Reading the losses waits for the device: report every 20 steps, not each one.
            if progress is not None and (done % 20 == 0 or done == total):
                progress(done / total, {"critic": c_loss.item(), "generator": g_loss.item()})
        if state_path is not None:
            _save_state(state_path, settings, modules, rng, epoch + 1)
    if conditional:
        generator = ema.module
        _standing_statistics(generator, labels, batch_size)
    return generator.cpu().eval().requires_grad_(False)


def _ema(average: torch.Tensor, current: torch.Tensor, updates: torch.Tensor) -> torch.Tensor:
    """The moving average's next value; its decay grows to EMA_DECAY as (1 + n) / (10 + n), so
    a short training is not left holding its initial weights."""
    decay = min(EMA_DECAY, (1 + float(updates)) / (10 + float(updates)))
    return decay * average + (1 - decay) * current


def _critic_loss(real: torch.Tensor, fake: torch.Tensor, hinge: bool) -> torch.Tensor:
    if hinge:
        return functional.relu(1 - real).mean() + functional.relu(1 + fake).mean()
    bce = nn.functional.binary_cross_entropy_with_logits
    return bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))


def _generator_loss(fake: torch.Tensor, hinge: bool) -> torch.Tensor:
    if hinge:
        return -fake.mean()
    return nn.functional.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


@torch.no_grad()
def _standing_statistics(generator: StagedGenerator, labels: torch.Tensor, batch: int) -> None:
    """Set the generator's batch-norm statistics to their average over fresh batches (classes
    drawn as often as the training set holds them)."""
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches below
    generator.train()
    device = labels.device
    for _ in range(STANDING_BATCHES):
        generator.condition(labels[torch.randint(len(labels), (batch,), device=device)])
        generator(torch.randn(batch, generator.latent_dim, device=device))
    for norm in norms:
        norm.momentum = 0.1


def _save_state(
    path: Path,
    settings: _Settings,
    modules: dict[str, nn.Module | torch.optim.Optimizer],
    rng: np.random.Generator,
    epochs_done: int,
) -> None:
    """Every module's and optimiser's state, both RNGs and the epochs done, written atomically."""
    state = {name: module.state_dict() for name, module in modules.items()}
    state |= {
        "settings": asdict(settings),
        "epochs_done": epochs_done,
        "numpy_rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
    }
    partial = Path(f"{path}.tmp")
    torch.save(state, partial)
    os.replace(partial, path)


def _resume(
    path: Path,
    settings: _Settings,
    modules: dict[str, nn.Module | torch.optim.Optimizer],
    rng: np.random.Generator,
) -> int:
    """Load a state written by :func:`_save_state` (if there is one); the epochs it had done."""
    if not Path(path).is_file():
        return 0
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state["settings"] != asdict(settings):
        raise UserInputError(
            f"training state {str(path)!r} was written with other settings "
            f"({state['settings']}); delete it or train with those settings"
        )
    for name, module in modules.items():
        module.load_state_dict(state[name])
    rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    return int(state["epochs_done"])
