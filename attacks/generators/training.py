"""Train a staged DCGAN generator on a dataset (or a subset of its classes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from attacks.generators.dcgan import WIDTH, Critic, StagedGenerator
from fedsim.data import ImageDataset
from fedsim.errors import UserInputError

Progress = Callable[[float, dict[str, float]], None]
"""Called after each batch with (fraction done, current losses)."""


def train_generator(
    data: ImageDataset,
    *,
    classes: Sequence[int] | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    width: int = WIDTH,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
) -> StagedGenerator:
    """Adversarial training (non-saturating loss, Adam 2e-4, β₁ 0.5) on [0, 1] images.

    The chosen rows are decoded once and kept on ``device`` as bytes; the generator comes
    back on the CPU.
    """
    torch.manual_seed(seed)
    labels = data.labels().numpy()
    rows = np.flatnonzero(np.isin(labels, classes)) if classes else np.arange(len(labels))
    if len(rows) < batch_size:
        raise UserInputError(f"{len(rows)} training images for batch size {batch_size}")
    pixels = (data.images(rows.tolist())[0] * 255).round().to(torch.uint8).to(device)
    generator = StagedGenerator(data.spec.image_shape, width=width).to(device)
    critic = Critic(data.spec.image_shape, width).to(device)
    g_opt = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    c_opt = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loss = nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(seed)
    steps_per_epoch, done = len(rows) // batch_size, 0
    total = epochs * steps_per_epoch
    ones = torch.ones(batch_size, device=device)
    zeros = torch.zeros(batch_size, device=device)
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(rows))).to(device)
        for step in range(steps_per_epoch):
            real = pixels[order[step * batch_size : (step + 1) * batch_size]].float() / 127.5 - 1
            fake = generator(torch.randn(batch_size, generator.latent_dim, device=device))
            c_opt.zero_grad()
            c_loss = loss(critic(real), ones) + loss(critic(fake.detach()), zeros)
            c_loss.backward()
            c_opt.step()
            g_opt.zero_grad()
            g_loss = loss(critic(fake), ones)
            g_loss.backward()
            g_opt.step()
            done += 1
            # Reading the losses waits for the device: report every 20 steps, not each one.
            if progress is not None and (done % 20 == 0 or done == total):
                progress(
                    done / total,
                    {"critic": c_loss.item(), "generator": g_loss.item()},
                )
    return generator.cpu().eval().requires_grad_(False)
