"""``fedleak view``: one-line errors for a bad folder or a busy port, and the streamlit command."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from apps.cli.view import VIEWER_SCRIPT, streamlit_command


def test_a_missing_folder_is_one_line_naming_it(tmp_path: Path, run_cli) -> None:
    missing = tmp_path / "no-such-runs"

    code, _, err = run_cli(["view", str(missing)])

    assert code == 2
    assert err.strip() == f"fedleak: error: no such folder {str(missing)!r}"


def test_a_file_is_not_a_folder_of_runs(tmp_path: Path, run_cli) -> None:
    (tmp_path / "metrics.json").write_text("{}")

    code, _, err = run_cli(["view", str(tmp_path / "metrics.json")])

    assert code == 2 and "is a file, not a folder of runs" in err
    assert len(err.strip().splitlines()) == 1


def test_a_busy_port_is_one_line(tmp_path: Path, run_cli) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]

        code, _, err = run_cli(["view", str(tmp_path), "--port", str(port)])

    assert code == 2
    assert err.strip() == f"fedleak: error: port {port} is in use; pick another with --port"


def test_the_viewer_runs_headless_on_loopback_with_the_root_after_the_dashes(
    tmp_path: Path,
) -> None:
    command = streamlit_command(tmp_path, 8765)

    assert command[:5] == [sys.executable, "-m", "streamlit", "run", str(VIEWER_SCRIPT)]
    options = dict(zip(command[5:-3:2], command[6:-3:2], strict=True))
    assert options == {
        "--server.headless": "true",
        "--server.address": "127.0.0.1",
        "--server.port": "8765",
        "--browser.gatherUsageStats": "false",
        "--client.toolbarMode": "minimal",
    }
    assert command[-3:] == ["--", "--root", str(tmp_path)]
    assert VIEWER_SCRIPT.is_file()
