"""Find a dataset split: local Parquet, the Hugging Face hub, an image folder, foolbox's samples."""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from fedsim.data.image_dataset import ImageDataset
from fedsim.data.registry import DatasetSpec, get_dataset_spec
from fedsim.errors import DataUnavailableError, UserInputError
from fedsim.network import why_unreachable

DATA_DIR_ENV = "FEDLEAK_DATA_DIR"
SPLITS = ("train", "test")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


class _SourceUnavailable(Exception):
    """One source cannot provide the split; the message says why, and the next source is tried."""


def load_dataset(
    name: str, split: str, *, image_folder: Path | None = None, allow_embedded: bool = False
) -> ImageDataset:
    """Load ``name``/``split`` from the first source that has it.

    Sources, in order: ``$FEDLEAK_DATA_DIR/<name>/<split>.parquet`` (a view reads its base
    dataset's sources and converts each image to its shape); the Hugging Face hub
    (skipped within seconds when unreachable); ``image_folder`` laid out as
    ``<root>/<class name or index>/<file>.png|jpg`` (serving whichever split is asked); and,
    only with ``allow_embedded``, the 20 sample images the foolbox package ships. A source
    that is absent is skipped; a local file that is present but broken raises at once.
    """
    spec = get_dataset_spec(name)
    if split not in SPLITS:
        raise UserInputError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    sources: list[tuple[str, Callable[[], ImageDataset]]] = [
        ("local parquet", partial(_from_local_parquet, spec, split)),
        (f"hub {spec.hf_id}", partial(_from_hub, spec, split)),
        ("image folder", partial(_from_image_folder, spec, split, image_folder)),
        ("embedded samples", partial(_from_embedded, spec, split, allow_embedded)),
    ]
    reasons = []
    for label, attempt in sources:
        try:
            return attempt()
        except _SourceUnavailable as why:
            reasons.append(f"{label}: {why}")
    raise DataUnavailableError(f"no source for {name}/{split}: {'; '.join(reasons)}")


def _from_local_parquet(spec: DatasetSpec, split: str) -> ImageDataset:
    root = os.environ.get(DATA_DIR_ENV)
    if not root:
        raise _SourceUnavailable(f"{DATA_DIR_ENV} not set")
    path = Path(root) / spec.source_name / f"{split}.parquet"
    if not path.is_file():
        raise _SourceUnavailable(f"{path} not found")
    # Read into memory rather than via datasets' builder, which would copy the file into its cache.
    try:
        rows = datasets.Dataset(pq.read_table(path))
    except (OSError, pa.ArrowException) as error:
        raise DataUnavailableError(
            f"local parquet {path} unreadable: {_one_line(error)}"
        ) from error
    return ImageDataset(spec, split, rows, f"local parquet {path}")


def _from_hub(spec: DatasetSpec, split: str) -> ImageDataset:
    # Offline, datasets retries for about 25 s before giving up; a 3 s probe answers sooner.
    # With HF_HUB_OFFLINE set, datasets only reads its local cache, which is quick.
    if not datasets.config.HF_HUB_OFFLINE:
        endpoint = urlparse(datasets.config.HF_ENDPOINT)
        why = why_unreachable(endpoint.hostname or "", endpoint.port or 443)
        if why:
            raise _SourceUnavailable(f"offline ({why})")
    try:
        rows = datasets.load_dataset(spec.hf_id, split=split)
    except Exception as error:  # hub failures come in many types; each only skips this source
        raise _SourceUnavailable(_one_line(error)) from error
    return ImageDataset(spec, split, rows, f"hub {spec.hf_id}")


def _from_image_folder(spec: DatasetSpec, split: str, root: Path | None) -> ImageDataset:
    if root is None:
        raise _SourceUnavailable("none given")
    root = Path(root)
    if not root.is_dir():
        raise _SourceUnavailable(f"{root} is not a directory")
    paths: list[str] = []
    labels: list[int] = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        label = _class_index(spec, class_dir)
        files = sorted(
            f for f in class_dir.rglob("*") if f.is_file() and f.suffix.lower() in _IMAGE_SUFFIXES
        )
        paths += [str(f) for f in files]
        labels += [label] * len(files)
    if not paths:
        raise _SourceUnavailable(f"no .png/.jpg files in {root}/<class>/")
    return ImageDataset(spec, split, _rows_from_files(spec, paths, labels), f"image folder {root}")


def _class_index(spec: DatasetSpec, class_dir: Path) -> int:
    if class_dir.name in spec.class_names:
        return spec.class_names.index(class_dir.name)
    if class_dir.name.isdigit() and int(class_dir.name) < spec.num_classes:
        return int(class_dir.name)
    raise UserInputError(
        f"image folder class {str(class_dir)!r} is neither a {spec.name} class name "
        f"({', '.join(spec.class_names)}) nor an index 0..{spec.num_classes - 1}"
    )


def _from_embedded(spec: DatasetSpec, split: str, allowed: bool) -> ImageDataset:
    if not allowed:
        raise _SourceUnavailable("not allowed (pass allow_embedded=True)")
    # find_spec locates the installed package without importing foolbox and its dependencies.
    package = importlib.util.find_spec("foolbox")
    if package is None or not package.submodule_search_locations:
        raise _SourceUnavailable("foolbox not installed")
    folder = Path(package.submodule_search_locations[0]) / "data"
    # File names read <dataset>_<position>_<label>.png, e.g. cifar10_00_3.png.
    pattern = re.compile(rf"{re.escape(spec.source_name)}_(\d+)_(\d+)\.png")
    samples = sorted(
        (int(match[1]), str(path), int(match[2]))
        for path in folder.glob("*.png")
        if (match := pattern.fullmatch(path.name))
    )
    if not samples:
        raise _SourceUnavailable(f"no {spec.source_name} samples in {folder}")
    rows = _rows_from_files(spec, [path for _, path, _ in samples], [lab for *_, lab in samples])
    return ImageDataset(spec, split, rows, f"embedded foolbox samples {folder}")


def _rows_from_files(spec: DatasetSpec, paths: list[str], labels: list[int]) -> datasets.Dataset:
    features = datasets.Features(
        {
            spec.image_column: datasets.Image(),
            spec.label_column: datasets.ClassLabel(names=list(spec.class_names)),
        }
    )
    return datasets.Dataset.from_dict(
        {spec.image_column: paths, spec.label_column: labels}, features=features
    )


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())}"
