"""Atomic files for every stage: safetensors with a JSON metadata block, and plain JSON."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, safe_open, save_file

from fedsim.errors import UserInputError

_META_KEY = "fedleak"


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Write tensors and JSON metadata to ``path`` atomically (a crash leaves no partial file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(contiguous, str(tmp), metadata={_META_KEY: json.dumps(meta)})
    tmp.replace(path)


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read what :func:`save_tensors` wrote: the tensors and the metadata."""
    meta = load_metadata(path)  # first: it names a missing file
    return load_file(str(path)), meta


def load_metadata(path: Path) -> dict:
    """Read only the metadata :func:`save_tensors` wrote (no tensor is loaded)."""
    if not path.is_file():
        raise UserInputError(f"no such file {str(path)!r}")
    with safe_open(str(path), framework="pt") as handle:
        return json.loads((handle.metadata() or {}).get(_META_KEY, "{}"))


def write_json(path: Path, value: object) -> None:
    """Write ``value`` as indented JSON atomically (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
