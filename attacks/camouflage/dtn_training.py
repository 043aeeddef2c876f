"""Train the DTN on renderer triplets: predict each flat-colour render from x_ref, mask and η."""

from __future__ import annotations

from collections.abc import Callable

import torch

from attacks.camouflage.dataset import Triplets
from attacks.camouflage.dtn import DTN


def flat_eta(colours: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """η for flat paint: each (3,) sRGB colour painted inside its (H, W) mask, (N, 3, H, W)."""
    return colours[:, :, None, None] * masks[:, None]


def car_mse(car: torch.Tensor, target: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean squared error per car pixel and channel between the DTN's masked output ``car`` and
    the real render ``target``, both (N, 3, H, W): pasted over ``target``, only the car differs."""
    return ((car - target * masks[:, None]) ** 2).sum() / (3 * masks.sum()).clamp_min(1.0)


def train_dtn(
    data: Triplets,
    *,
    steps: int,
    batch_size: int = 16,
    lr: float = 1e-3,
    width: int = 32,
    seed: int = 0,
    device: torch.device | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[DTN, float]:
    """A DTN trained with Adam for ``steps`` batches of (view, colour) pairs drawn with
    replacement; returns it (eval mode, on CPU) and its car-pixel MSE over the last 10% of steps.

    ``progress(step, loss)`` is called after each step.
    """
    device = device or torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DTN(width=width).to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    x_ref, masks = data.x_ref.to(device), data.masks.to(device)
    colours, renders = data.colours.to(device), data.renders.to(device)
    views, per_view = colours.shape[:2]
    tail: list[float] = []
    for step in range(1, steps + 1):
        view = torch.randint(views, (batch_size,), generator=generator).to(device)
        colour = torch.randint(per_view, (batch_size,), generator=generator).to(device)
        mask = masks[view]
        eta = flat_eta(colours[view, colour], mask)
        predicted = model(x_ref[view], mask, eta)
        loss = car_mse(predicted, renders[view, colour], mask)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        value = loss.item()
        if step > steps - max(1, steps // 10):
            tail.append(value)
        if progress:
            progress(step, value)
    return model.cpu().eval(), sum(tail) / len(tail)


def predict(
    model: DTN, x_ref: torch.Tensor, masks: torch.Tensor, etas: torch.Tensor, batch_size: int = 32
) -> torch.Tensor:
    """The DTN's renders (N, 3, H, W) of N (x_ref, mask, η) triples, in batches, without grads."""
    with torch.no_grad():
        return torch.cat(
            [
                model(x_ref[chunk], masks[chunk], etas[chunk])
                for chunk in torch.arange(len(x_ref)).split(batch_size)
            ]
        )
