"""Why train-mode BatchNorm clients resist gradient inversion: how fast the matching objective
grows away from the true batch, in train mode and in eval mode.

    .venv/bin/python benchmarks/train_mode_sensitivity.py [--models resnet18 convnet64]
        [--batch-size 4] [--seed 0] [--per-layer] [--weights PATH] [--noise-resolution R]

For a fresh model (seed ``--seed``) and the first ``--batch-size`` CIFAR-10 test images, the
FedSGD gradient is computed in each mode; then IG's cosine gradient distance (labels given,
no prior) is evaluated at the true batch plus Gaussian noise of standard deviation σ in the
normalised input space (the images span about 4 units there). A search can only close a gap
that shrinks smoothly as it nears the truth. Prints one JSON line per model and mode; with
``--per-layer``, also each parameter tensor's gradient norm at the truth and its own cosine
distance at σ = 0.01 (where the whole gradient's distance comes from), and ``steep_share``: the
share of the gradient's squared norm in tensors whose own distance there exceeds 0.1.
``--weights`` takes a trained model instead of a fresh one (a ``fedleak simulate`` run's
``final_weights.safetensors`` or its folder, e.g. suite ``batchnorm-trained``'s victim under
``runs/…/federated/victims/*/``; one model in ``--models``). ``--noise-resolution R`` draws the
noise at R × R per channel and upsamples it (bilinear) to the image, rescaled to unit standard
deviation: low-frequency noise of the same energy (R = 1: one shift per image and channel).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch

from attacks import get_preset
from attacks.matching import attacker_model, gradient_matching_objective
from fedsim.data import load_dataset, normalize
from fedsim.fedsgd import fedsgd_observation
from fedsim.models import ModelSpec, build_model
from fedsim.models.trained_weights import load_trained_weights

SIGMAS = (0.0, 0.001, 0.01, 0.03, 0.1, 0.3)
LAYER_SIGMA = 0.01
STEEP = 0.1  # a tensor whose own distance at LAYER_SIGMA exceeds this is "steep"


def gaps_near_the_truth(
    model: str,
    batch_size: int,
    seed: int,
    train_mode: bool,
    per_layer: bool = False,
    weights: Path | None = None,
    noise_resolution: int | None = None,
) -> dict:
    """IG's cosine distance at the true batch plus noise of each σ in :data:`SIGMAS`, and
    with ``per_layer`` each parameter's gradient norm and distance at :data:`LAYER_SIGMA`;
    at ``weights`` where given, else at a fresh model seeded by ``seed``; the noise drawn at
    ``noise_resolution`` × ``noise_resolution`` and upsampled where given."""
    data = load_dataset("cifar10", "test")
    images, labels = data.images(list(range(batch_size)))
    spec = ModelSpec(model, data.spec.num_classes, data.spec.image_shape)
    torch.manual_seed(seed)
    network = build_model(spec)
    if weights is not None:
        load_trained_weights(network, model, weights)
    observation, _ = fedsgd_observation(
        network, spec, data.spec, images, labels, train_mode=train_mode
    )
    config = get_preset("ig-fast", tv_weight=0.0, label_strategy="given")
    objective = gradient_matching_objective(replace(observation, labels=labels), config, "cpu")
    inputs = normalize(images, data.spec)
    one_hot = torch.nn.functional.one_hot(labels, data.spec.num_classes).float()
    noise = smooth_noise(inputs.shape, noise_resolution, seed)
    with torch.no_grad():
        gaps = {s: float(objective(inputs + s * noise, one_hot, {})[1]) for s in SIGMAS}
    result = {"model": model, "train_mode": train_mode, "batch_size": batch_size, "gaps": gaps}
    result["weights"] = "fresh" if weights is None else str(weights)
    result["noise_resolution"] = noise_resolution or inputs.shape[-1]
    if per_layer:
        layers = layer_gaps(observation, inputs, labels, noise * LAYER_SIGMA)
        total = sum(norm**2 for norm, _ in layers.values())
        steep = sum(norm**2 for norm, gap in layers.values() if gap > STEEP)
        result["steep_share"] = round(steep / total, 4)
        result["layers"] = layers
    return result


def smooth_noise(shape: torch.Size, resolution: int | None, seed: int) -> torch.Tensor:
    """Unit-variance Gaussian noise of ``shape`` (N, C, H, W); drawn at ``resolution`` squared
    per channel and upsampled bilinearly where given."""
    rng = torch.Generator().manual_seed(seed)
    if resolution is None or resolution == shape[-1]:
        return torch.randn(shape, generator=rng)
    coarse = torch.randn(*shape[:2], resolution, resolution, generator=rng)
    noise = torch.nn.functional.interpolate(coarse, size=shape[-2:], mode="bilinear")
    return noise / noise.std()


def layer_gaps(observation, inputs: torch.Tensor, labels: torch.Tensor, shift: torch.Tensor):
    """Per parameter tensor: (gradient norm at ``inputs``, 1 − cosine of its gradients at
    ``inputs`` and ``inputs + shift``); tensors whose gradient is ~0 (under 1e-4 of the
    largest norm: a bias before BatchNorm, which the normalisation cancels) are left out."""
    model = attacker_model(observation)
    names = observation.parameter_names()

    def gradients(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        params = {n: observation.global_state[n].clone().requires_grad_(True) for n in names}
        logits = torch.func.functional_call(model, (params, dict(model.named_buffers())), batch)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        return dict(zip(names, torch.autograd.grad(loss, list(params.values())), strict=True))

    at, near = gradients(inputs), gradients(inputs + shift)
    norms = {n: float(g.norm()) for n, g in at.items()}
    floor = 1e-4 * max(norms.values())
    cosine = torch.nn.functional.cosine_similarity
    return {
        n: [round(norms[n], 6), round(float(1 - cosine(at[n].flatten(), near[n].flatten(), 0)), 4)]
        for n in names
        if norms[n] > floor
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "convnet64"])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-layer", action="store_true")
    parser.add_argument("--weights", type=Path, help="a trained model's final weights")
    parser.add_argument(
        "--noise-resolution", type=int, help="draw the noise at R x R and upsample it"
    )
    args = parser.parse_args()
    resolution = args.noise_resolution
    if resolution is not None and not 1 <= resolution <= 32:
        parser.error(f"--noise-resolution must be 1..32 (CIFAR-10's size); got {resolution}")
    if args.weights is not None and len(args.models) != 1:
        parser.error(f"--weights needs one model in --models; got {' '.join(args.models)}")
    for model in args.models:
        for train_mode in (True, False):
            print(
                json.dumps(
                    gaps_near_the_truth(
                        model,
                        args.batch_size,
                        args.seed,
                        train_mode,
                        args.per_layer,
                        args.weights,
                        resolution,
                    )
                )
            )


if __name__ == "__main__":
    main()
