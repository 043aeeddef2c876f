"""``fedleak view``: serve the Streamlit viewer of a folder of runs on loopback."""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from apps.cli.app import app, stdout
from fedsim.errors import FedleakError, UserInputError

VIEWER_SCRIPT = Path(__file__).resolve().parent.parent / "viewer" / "app.py"
HOST = "127.0.0.1"


@app.command()
def view(
    directory: Annotated[
        Path, typer.Argument(help="Folder of attack runs, simulations and bench stores.")
    ],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.", min=1, max=65535)] = 8501,
) -> None:
    """Look at reconstructions beside their originals, with metrics and plots, in a browser."""
    root = check_root(directory)
    check_port_free(port)
    stdout.print(f"fedleak viewer of {root}: http://{HOST}:{port}/  (Ctrl+C stops it)")
    process = subprocess.Popen(streamlit_command(root, port))
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait(timeout=10)
        return
    if code != 0:
        raise FedleakError(f"the viewer (streamlit) exited with code {code}")


def check_root(directory: Path) -> Path:
    """``directory`` resolved; a missing path or a file is a one-line user error naming it."""
    if not directory.exists():
        raise UserInputError(f"no such folder {str(directory)!r}")
    if not directory.is_dir():
        raise UserInputError(f"{str(directory)!r} is a file, not a folder of runs")
    return directory.resolve()


def check_port_free(port: int) -> None:
    """Fail in one line before streamlit starts if another process holds ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UserInputError(f"port {port} is in use; pick another with --port") from error
            raise


def streamlit_command(root: Path, port: int) -> list[str]:
    """The ``streamlit run`` command line: headless, loopback only, no usage statistics."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(VIEWER_SCRIPT),
        "--server.headless",
        "true",
        "--server.address",
        HOST,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--",
        "--root",
        str(root),
    ]
