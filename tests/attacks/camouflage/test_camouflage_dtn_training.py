"""A short DTN training on real renders lowers its error on held-out views and colours; its
checkpoint reloads to the same predictions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from attacks.camouflage.dataset import DatasetConfig, Triplets, render_triplets
from attacks.camouflage.dtn import DTN, DTNRecord, load_dtn, save_dtn
from attacks.camouflage.dtn_fidelity import flat_fidelity, pattern_fidelity
from attacks.camouflage.dtn_training import flat_eta, predict, train_dtn
from attacks.camouflage.pattern_renders import render_patterns


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Small convolutions run several times faster on one thread of a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def renders() -> tuple[Triplets, Triplets]:
    """(training triplets, held-out triplets: other views and colours, drawn from another seed)."""
    train = render_triplets(DatasetConfig(views=8, colours=3, size=32, spp=4, seed=0))
    held_out = render_triplets(DatasetConfig(views=3, colours=2, size=32, spp=4, seed=1))
    return train, held_out


def test_short_training_lowers_held_out_error(renders: tuple[Triplets, Triplets]) -> None:
    train, held_out = renders
    before = flat_fidelity(DTN(width=8), held_out)

    model, train_loss = train_dtn(train, steps=80, batch_size=8, width=8, lr=3e-3, seed=0)
    after = flat_fidelity(model, held_out)

    assert after["mse_car"] < 0.5 * before["mse_car"]
    assert after["mse"] < before["mse"] and after["psnr"] > before["psnr"] + 3
    assert after["ssim"] > before["ssim"]
    assert train_loss < before["mse_car"]
    assert after["pairs"] == 6

    # Textured patterns, never seen in training: the trained DTN still beats the identity.
    patterns = render_patterns(held_out.views, patterns=2, size=32, spp=4, seed=1)
    assert (
        pattern_fidelity(model, patterns)["mse_car"]
        < pattern_fidelity(DTN(width=8), patterns)["mse_car"]
    )


def test_training_is_seeded_and_the_checkpoint_round_trips(
    renders: tuple[Triplets, Triplets], tmp_path: Path
) -> None:
    train, held_out = renders
    model, loss = train_dtn(train, steps=5, batch_size=4, width=8, seed=3)
    again, loss_again = train_dtn(train, steps=5, batch_size=4, width=8, seed=3)
    record = DTNRecord(
        width=8, size=32, car="sedan", data_seed=0, steps=5, seed=3, command="t", train_loss=loss
    )
    save_dtn(tmp_path / "dtn.safetensors", model, record)
    loaded, loaded_record = load_dtn(tmp_path / "dtn.safetensors")

    assert loss == loss_again
    assert loaded_record == record
    inputs = (held_out.x_ref, held_out.masks, flat_eta(held_out.colours[:, 0], held_out.masks))
    torch.testing.assert_close(predict(loaded, *inputs), predict(model, *inputs))
    torch.testing.assert_close(predict(again, *inputs), predict(model, *inputs))
