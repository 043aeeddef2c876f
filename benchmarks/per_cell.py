"""The command line of the diagnostic scripts that read bench cells: one JSON line per cell."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import torch


def print_per_cell(description: str, per_cell: Callable[[Path], dict]) -> None:
    """Parse ``CELL [CELL ...]`` (bench cell folders) and print ``per_cell(cell)`` as JSON each."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("cells", nargs="+", type=Path)
    torch.set_num_threads(1)
    for cell in parser.parse_args().cells:
        print(json.dumps(per_cell(cell)))
