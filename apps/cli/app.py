"""The ``fedleak`` app object, its consoles and output helpers, and the entry point."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import click
import typer
from pydantic import ValidationError
from rich.console import Console

from fedsim.errors import FedleakError

app = typer.Typer(
    name="fedleak",
    help="What can a server reconstruct of a client's data from federated learning updates?",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
stdout = Console()
stderr = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON line last, for machines.")]


def default_out(kind: str) -> Path:
    """A fresh run folder under runs/, named by kind and time."""
    return Path("runs") / f"{kind}-{datetime.now():%Y%m%d-%H%M%S}"


def fmt(value: object) -> str:
    """A table cell: floats to 4 significant digits, ints with thousands separators."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn user mistakes into one line and exit code 2."""
    try:
        app(args=argv, prog_name="fedleak", standalone_mode=False)
    except click.exceptions.Abort:
        stderr.print("aborted")
        sys.exit(130)
    except click.ClickException as error:
        _fail(error.format_message())
    except FedleakError as error:
        _fail(str(error))
    except ValidationError as error:
        _fail(_validation_line(error))


def _validation_line(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "value"
    return f"invalid {field} {first.get('input')!r}: {first['msg']}"


def _fail(message: str) -> None:
    print(f"fedleak: error: {message}", file=sys.stderr)
    sys.exit(2)
