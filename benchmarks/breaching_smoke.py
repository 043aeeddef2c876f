"""Check breaching_runner.py end to end on one CIFAR-10 test image and a fresh convnet64.

Run with the breaching venv::

    benchmarks/.venv-breaching/bin/python benchmarks/breaching_smoke.py --iterations 50

It computes the client's gradient (cross-entropy), runs the runner in a subprocess as the
benchmark does, and prints PSNR (dB, pixels in [0, 1]) of breaching's random start and of its
reconstruction against the true image.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from fedsim.models import ModelSpec, build_model  # noqa: E402

CIFAR10_TEST = Path("/work/shared/data/cifar10/test.parquet")
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def psnr(normalised: torch.Tensor, truth01: torch.Tensor) -> float:
    """PSNR in dB of normalised images against [0, 1] images, after de-normalising and clamping."""
    pixels = normalised * torch.tensor(STD)[:, None, None] + torch.tensor(MEAN)[:, None, None]
    mse = (pixels.clamp(0, 1) - truth01).pow(2).mean()
    return float(10 * torch.log10(1 / mse))


def main() -> None:
    """Build a request from one test image, run the runner on it, and report PSNR and speed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--index", type=int, default=0, help="row of the CIFAR-10 test split")
    parser.add_argument("--eval-mode", action="store_true", help="client in eval mode")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    row = pq.read_table(CIFAR10_TEST).slice(args.index, 1).to_pylist()[0]
    rgb = np.asarray(Image.open(io.BytesIO(row["img"]["bytes"])).convert("RGB"), np.float32)
    truth01 = torch.from_numpy(rgb / 255.0).permute(2, 0, 1).contiguous()
    image = (truth01 - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]

    torch.manual_seed(args.seed)
    model = build_model(ModelSpec("convnet64", 10, (3, 32, 32))).train(not args.eval_mode)
    loss = torch.nn.functional.cross_entropy(model(image[None]), torch.tensor([row["label"]]))
    names = [name for name, _ in model.named_parameters()]
    gradient = torch.autograd.grad(loss, list(model.parameters()))

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, work / "model.st")
        save_file(dict(zip(names, gradient, strict=True)), work / "gradient.st")
        request = dict(
            model_file=str(work / "model.st"),
            model_name="convnet64",
            num_classes=10,
            image_shape=[3, 32, 32],
            train_mode=not args.eval_mode,
            gradient_file=str(work / "gradient.st"),
            labels=[row["label"]],
            mean=MEAN,
            std=STD,
            iterations=args.iterations,
            seed=args.seed,
            restarts=1,
            out=str(work / "out"),
        )
        (work / "request.json").write_text(json.dumps(request))
        runner = [sys.executable, str(HERE / "breaching_runner.py"), str(work / "request.json")]
        subprocess.run(runner, check=True)
        images = load_file(work / "out" / "reconstruction.safetensors")["images"]
        stats = json.loads((work / "out" / "stats.json").read_text())

    # breaching's init: torch.randn right after the runner seeds, projected into the pixel box.
    torch.manual_seed(args.seed)
    start = torch.randn(1, 3, 32, 32)[0]
    mode = "eval" if args.eval_mode else "train"
    print(
        f"label {row['label']}, {mode} mode: PSNR start {psnr(start, truth01):.2f} dB -> "
        f"reconstruction {psnr(images[0], truth01):.2f} dB "
        f"after {stats['iterations_done']} iterations, {stats['seconds_per_iteration']:.3f} s/it"
    )


if __name__ == "__main__":
    main()
