"""Soteria prunes the chosen fraction of the defended layer's input features and keeps the rest."""

from __future__ import annotations

import pytest
import torch

from defenses.soteria import defended_layer, feature_scores, soteria_gradient
from defenses.specs import parse_defense
from fedsim.errors import UserInputError
from fedsim.fedsgd import client_gradient
from fedsim.flower.run_dir import observation_path
from fedsim.models import ModelSpec, build_model
from fedsim.observation import Observation


@pytest.mark.parametrize("name", ["mlp", "lenet"])
def test_soteria_zeroes_the_lowest_scoring_columns_and_keeps_the_rest(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(ModelSpec(name, 10, (3, 32, 32))).eval()
    inputs, labels = torch.randn(2, 3, 32, 32), torch.tensor([3, 5])
    gradient = client_gradient(model, inputs, labels, train_mode=False)
    layer = defended_layer(model)
    weight = f"{layer}.weight"

    defended = soteria_gradient(model, inputs, gradient, fraction=0.8)

    width = gradient[weight].shape[1]
    zeroed = (defended[weight] == 0).all(dim=0)
    assert int(zeroed.sum()) == int(0.8 * width)
    scores = feature_scores(model, inputs, layer)
    assert scores[zeroed].max() <= scores[~zeroed].min()
    assert torch.equal(defended[weight][:, ~zeroed], gradient[weight][:, ~zeroed])
    assert all(torch.equal(defended[n], gradient[n]) for n in gradient if n != weight)


def test_the_score_is_the_input_sensitivity_of_each_feature_over_its_size() -> None:
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    inputs = torch.randn(2, 1, 2, 2)

    scores = feature_scores(model, inputs, "2")

    features = model[1](inputs.flatten(1))
    row_norms = model[1].weight.norm(dim=1)  # ∂r_f/∂x of a linear feature: its weight row
    expected = (row_norms / (features.detach().abs() + 0.1)).sum(0)
    assert torch.allclose(scores, expected, rtol=1e-5)


@pytest.mark.parametrize("text", ["soteria:fraction=1.5", "soteria:fraction=0", "soteria"])
def test_a_bad_fraction_is_one_line(text: str) -> None:
    with pytest.raises(UserInputError, match="soteria"):
        parse_defense(text, "attack")


def test_soteria_in_a_flower_run_prunes_the_last_layer_columns_of_every_update(
    simulated_run,
) -> None:
    run = simulated_run(
        "soteria",
        ["--model", "mlp", "--clients", "2", "--rounds", "1", "--batch-size", "2"]
        + ["--local-steps", "2", "--defense", "soteria:fraction=0.5"],
    )

    for client in (0, 1):
        observation = Observation.load(observation_path(run, 1, client))
        assert observation.defenses == ("soteria:fraction=0.5",)
        update = observation.gradient()
        layer = defended_layer(build_model(observation.model))
        zero_columns = (update[f"{layer}.weight"] == 0).all(dim=0)
        assert int(zero_columns.sum()) == update[f"{layer}.weight"].shape[1] // 2
        others = [t for n, t in update.items() if n != f"{layer}.weight"]
        assert all(t.abs().sum() > 0 for t in others)
