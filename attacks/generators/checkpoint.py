"""Generator checkpoints: safetensors weights with the recipe that made them, and lookup.

A checkpoint is one ``.safetensors`` file holding a :class:`StagedGenerator`'s state and, as
metadata, its image shape, latent size, dataset, classes (and, for a class-conditional one, how
many classes it conditions on), and the command and seed that trained it. The project ships
one per dataset under ``attacks/generators/checkpoints/``.
A folder with ``config.json`` names a pytorch-pretrained-biggan BigGAN instead
(:mod:`attacks.generators.biggan`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from torch import nn

from attacks.generators.biggan import BigGANRecord, is_biggan_folder, load_biggan
from attacks.generators.dcgan import WIDTH, StagedGenerator
from fedsim.errors import UserInputError
from fedsim.storage import load_metadata, load_tensors, save_tensors

SHIPPED_DIR = Path(__file__).parent / "checkpoints"


@dataclass(frozen=True)
class GeneratorRecord:
    """What a checkpoint says about its generator and how it was trained."""

    dataset: str
    image_shape: tuple[int, int, int]
    latent_dim: int
    classes: tuple[int, ...]
    epochs: int
    seed: int
    command: str
    width: int = WIDTH  # checkpoints from before the option have the default width
    num_classes: int = 0  # > 0: class-conditional (older checkpoints are unconditional)


def save_generator(path: Path, generator: StagedGenerator, record: GeneratorRecord) -> None:
    """Write the generator's state (float16, to stay small) and its record."""
    state = {
        k: v.detach().half() if v.is_floating_point() else v
        for k, v in generator.state_dict().items()
    }
    save_tensors(path, state, asdict(record))


def load_generator(path: Path) -> tuple[StagedGenerator, GeneratorRecord]:
    """Read a checkpoint written by :func:`save_generator`, in eval mode and frozen."""
    if not Path(path).is_file():
        raise UserInputError(
            f"no generator checkpoint at {str(path)!r} (a .safetensors file from `fedleak "
            "train-generator`, or a pytorch-pretrained-biggan folder with config.json)"
        )
    tensors, meta = load_tensors(Path(path))
    record = GeneratorRecord(
        **{**meta, "image_shape": tuple(meta["image_shape"]), "classes": tuple(meta["classes"])}
    )
    generator = StagedGenerator(
        record.image_shape, record.latent_dim, record.width, record.num_classes
    )
    generator.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    )
    return generator.eval().requires_grad_(False), record


def shipped_generator_path(dataset: str) -> Path:
    """Where the project's own generator for ``dataset`` lives (it may not exist)."""
    return SHIPPED_DIR / f"{dataset}.safetensors"


def shipped_generators(image_shape: tuple[int, ...]) -> list[Path]:
    """The shipped generator checkpoints that make ``image_shape`` images, by name."""
    found = []
    for path in sorted(SHIPPED_DIR.glob("*.safetensors")):
        if tuple(load_metadata(path).get("image_shape", ())) == tuple(image_shape):
            found.append(path)
    return found


def generator_for(
    dataset: str, image_shape: tuple[int, ...], path: Path | None
) -> tuple[nn.Module, GeneratorRecord | BigGANRecord]:
    """The generator at ``path`` (a checkpoint, or a pytorch-pretrained-biggan folder), or the
    shipped one of ``dataset``; it must make ``image_shape`` images (a BigGAN may downsample).

    A dataset without a shipped generator — a view such as ``mnist-rgb32`` included — needs
    ``path``: which generator to attack out of distribution with is the user's choice.
    """
    if path is not None and is_biggan_folder(path):
        return load_biggan(Path(path), image_shape)
    chosen = path or shipped_generator_path(dataset)
    if path is None and not chosen.is_file():
        same_shape = ", ".join(str(p) for p in shipped_generators(image_shape))
        hint = f" (shipped ones making {tuple(image_shape)} images: {same_shape})"
        raise UserInputError(
            f"no shipped generator for dataset {dataset!r}; pass --generator PATH"
            f"{hint if same_shape else ''}, or train one with `fedleak train-generator "
            f"--dataset {dataset} --out PATH`"
        )
    generator, record = load_generator(chosen)
    if tuple(record.image_shape) != tuple(image_shape):
        raise UserInputError(
            f"generator {str(chosen)!r} makes {record.image_shape} images; the attacked model "
            f"takes {tuple(image_shape)}"
        )
    return generator, record
