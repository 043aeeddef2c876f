"""Pick the torch device from the user's choice: auto, cpu or cuda."""

from __future__ import annotations

from typing import Literal

import torch

from fedsim.errors import UserInputError

DeviceChoice = Literal["auto", "cpu", "cuda"]


def resolve_device(choice: str = "auto") -> torch.device:
    """Return CUDA when asked or available under ``auto``, else CPU."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise UserInputError(
                "device 'cuda' requested but no CUDA device is available; use auto or cpu"
            )
        return torch.device("cuda")
    raise UserInputError(f"unknown device {choice!r}; valid: auto, cpu, cuda")
