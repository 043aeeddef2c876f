"""Label strategies read the batch's labels from the last layer's gradient, not the secret."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from attacks.labels import LABEL_STRATEGIES, estimate_labels, given_labels, idlg_label
from fedsim.errors import UserInputError
from fedsim.models import model_names


@pytest.mark.parametrize("model_name", model_names())
@pytest.mark.parametrize("label", [0, 3, 9])
def test_idlg_recovers_the_single_label_exactly(
    model_name: str, label: int, synthetic_observation
) -> None:
    observation, truth = synthetic_observation(model_name, [label], seed=label)

    assert idlg_label(observation).tolist() == truth.labels.tolist()


def test_idlg_reads_weight_only_heads_whatever_the_feature_sign(synthetic_observation) -> None:
    # mlp has no bias and GELU features that can be negative: the rank-1 sign rule must hold.
    for label in range(10):
        observation, _ = synthetic_observation("mlp", [label], dataset="mnist", seed=label)
        assert idlg_label(observation).item() == label


def test_idlg_refuses_batches(synthetic_observation) -> None:
    observation, _ = synthetic_observation("lenet", [1, 2])

    with pytest.raises(UserInputError, match="needs one image"):
        idlg_label(observation)


@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [5, 5, 2, 7], [4, 4, 4, 1]])
def test_estimate_counts_labels_of_a_batch(labels: list[int], synthetic_observation) -> None:
    observation, truth = synthetic_observation("convnet64", labels)

    assert estimate_labels(observation).tolist() == sorted(truth.labels.tolist())


def test_given_labels_need_a_grant(synthetic_observation) -> None:
    granted, truth = synthetic_observation("lenet", [2, 8], grant_labels=True)
    hidden, _ = synthetic_observation("lenet", [2, 8])

    assert torch.equal(given_labels(granted), truth.labels)
    with pytest.raises(UserInputError, match="needs labels"):
        given_labels(hidden)


def test_auto_prefers_grant_then_idlg_then_estimate(synthetic_observation) -> None:
    auto = LABEL_STRATEGIES["auto"]
    single, _ = synthetic_observation("lenet", [6])
    batch, _ = synthetic_observation("lenet", [1, 1, 3])

    assert auto(single).tolist() == [6]
    assert sorted(auto(batch).tolist()) == [1, 1, 3]


@pytest.mark.parametrize("model_name", ["lenet", "mlp"])
def test_idlg_sees_through_weight_decay(model_name: str, synthetic_observation) -> None:
    observation, truth = synthetic_observation(model_name, [7])
    lr, decay = 0.1, 10.0  # extreme on purpose: left in, it flips these heads' label signs
    returned = {
        n: observation.global_state[n] - lr * (g + decay * observation.global_state[n])
        for n, g in observation.client_update.items()
    }
    as_weights = replace(
        observation, client_update=returned, update_kind="weights", lr=lr, weight_decay=decay
    )

    assert idlg_label(as_weights).tolist() == truth.labels.tolist()
