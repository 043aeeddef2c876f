"""Generator training: a training resumed from its state is the training that was never
interrupted, for both recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attacks.generators.training import train_generator
from fedsim.data import load_dataset
from fedsim.errors import UserInputError

SMALL = {"classes": [0, 1], "batch_size": 512, "width": 16, "seed": 3, "device": "cpu"}


class _Crash(RuntimeError):
    pass


def _crash_in_second_epoch(done: float, _losses: dict[str, float]) -> None:
    if done > 0.5:
        raise _Crash


@pytest.mark.parametrize("conditional", [False, True])
def test_a_resumed_training_equals_the_uninterrupted_one(
    tmp_path: Path, data_dir, conditional: bool
) -> None:
    data = load_dataset("mnist", "train")
    settings = {**SMALL, "epochs": 2, "conditional": conditional}
    straight = train_generator(data, **settings)
    state = tmp_path / "g.state"

    with pytest.raises(_Crash):
        train_generator(data, **settings, state_path=state, progress=_crash_in_second_epoch)
    assert state.is_file()  # the first epoch's state survived the crash
    resumed = train_generator(data, **settings, state_path=state)

    assert resumed.conditional == conditional
    expected, got = straight.state_dict(), resumed.state_dict()
    assert expected.keys() == got.keys()
    for name, tensor in expected.items():
        assert torch.equal(tensor, got[name]), name


def test_a_state_of_other_settings_is_refused(tmp_path: Path, data_dir) -> None:
    data = load_dataset("mnist", "train")
    state = tmp_path / "g.state"
    train_generator(data, **SMALL, epochs=1, state_path=state)

    with pytest.raises(UserInputError, match="was written with other settings"):
        train_generator(data, **{**SMALL, "width": 32}, epochs=1, state_path=state)
