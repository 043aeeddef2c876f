"""``fedleak fusion``: bad input fails in one line naming the valid values, with exit code 2."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--perturbation", "cw:eps=0.1"], "unknown perturbation 'cw'; valid: none, fgsm:eps=E"),
        (["--perturbation", "fgsm:eps=2"], "eps=2 out of range; valid: 0 <= eps <= 1"),
        (["--perturbation", "pgd:eps=0.03,steps=x"], "steps='x' is not a int"),
        (["--crafted-on", "scene"], "unknown head 'scene'; valid: context, fused, object"),
    ],
)
def test_evaluate_bad_input_is_one_line(run_cli, args: list[str], message: str) -> None:
    code, out, err = run_cli(["fusion", "evaluate", *args, "--images", "4"])

    assert code == 2
    assert err.strip().count("\n") == 0
    assert message in err


def test_train_unknown_stream_is_one_line(run_cli, tmp_path) -> None:
    code, _, err = run_cli(["fusion", "train", "--stream", "scene", "--out", str(tmp_path)])

    assert code == 2
    assert "unknown stream 'scene'; valid: context, heads, object" in err.strip()


def test_evaluate_missing_checkpoint_is_one_line(run_cli, tmp_path) -> None:
    code, _, err = run_cli(["fusion", "evaluate", "--checkpoint", str(tmp_path), "--images", "4"])

    assert code == 2
    assert "no trunk checkpoint at" in err and err.strip().count("\n") == 0
