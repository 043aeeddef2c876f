"""What BatchNorm buffers leak: derived batch statistics, the BN prior and ig-bn's fallback."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from apps.attack_run import (
    AttackRequest,
    CaptureAttackRequest,
    load_capture,
    run_attack,
    run_capture_attack,
)
from attacks import get_preset
from attacks.batch_statistics import (
    LayerStatistics,
    batch_norm_layers,
    leaked_batch_statistics,
    prior_targets,
    recorded_statistics,
    step_weights,
)
from attacks.matching import gradient_matching_objective
from attacks.priors import batch_statistics_distance
from fedsim.data import get_dataset_spec, normalize
from fedsim.flower.local_training import train_steps
from fedsim.models import ModelSpec, build_model
from fedsim.observation import Observation


@pytest.fixture(scope="module")
def capture(simulated_run) -> Path:
    """A real Flower run: convnet64 clients training in train mode, one step of 3 MNIST digits."""
    args = ["--model", "convnet64", "--clients", "2", "--rounds", "1", "--batch-size", "3"]
    return simulated_run("bn-capture", [*args, "--lr", "0.05"])


def _true_statistics(observation: Observation, images: torch.Tensor) -> dict:
    """Each BatchNorm layer's input mean and unbiased variance on the client's batch."""
    model = build_model(observation.model)
    model.load_state_dict(observation.global_state)
    inputs = normalize(images, get_dataset_spec(observation.dataset))
    with torch.no_grad(), recorded_statistics(batch_norm_layers(model.train())) as statistics:
        model(inputs)
    return statistics


def test_capture_keeps_the_returned_buffers_and_no_image(capture: Path) -> None:
    observation, truth = load_capture(capture, 1, 0)

    layers = batch_norm_layers(build_model(observation.model))
    expected = {f"{n}.{b}" for n in layers for b in ("running_mean", "running_var")}
    expected |= {f"{n}.num_batches_tracked" for n in layers}
    assert set(observation.buffer_names()) == expected
    assert not set(observation.buffer_names()) & set(observation.parameter_names())
    path = capture / "observations" / "round-001" / "client-000.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        shapes = [handle.get_tensor(k).shape for k in handle.keys()]  # noqa: SIM118 (safe_open has no __iter__)
    assert truth.images.shape not in shapes and truth.images[0].shape not in shapes


def test_derived_batch_statistics_are_the_clients_true_ones(capture: Path) -> None:
    observation, truth = load_capture(capture, 1, 1)

    derived = leaked_batch_statistics(observation)
    true = _true_statistics(observation, truth.images)

    assert derived and set(derived) == set(true)
    for name, layer in derived.items():
        assert layer.weights == (1.0,)
        torch.testing.assert_close(layer.mean, true[name][0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(layer.var, true[name][1], atol=1e-5, rtol=1e-4)


def test_prior_and_train_mode_objective_vanish_at_the_true_batch(capture: Path) -> None:
    observation, truth = load_capture(capture, 1, 0)
    observation = replace(observation, labels=truth.labels)
    targets = prior_targets(observation, "leaked")
    inputs = normalize(truth.images, get_dataset_spec(observation.dataset))

    prior = batch_statistics_distance([_true_statistics(observation, truth.images)], targets.layers)
    objective = gradient_matching_objective(
        observation, get_preset("ig-bn", tv_weight=0.0, label_strategy="given"), "cpu"
    )
    one_hot = torch.nn.functional.one_hot(truth.labels, observation.model.num_classes).float()
    loss, gap = objective(inputs, one_hot, {})
    random_loss, _ = objective(torch.randn_like(inputs), one_hot, {})

    assert targets.source == "leaked" and observation.train_mode
    assert float(prior) < 1e-8
    assert float(gap) < 1e-5 and float(loss) < 1e-5
    assert float(random_loss) > 0.1


def test_the_prior_measures_each_channel_in_its_own_units() -> None:
    target = LayerStatistics(torch.tensor([0.5, -1.0, 2.0]), torch.tensor([0.2, 1.0, 3.0]), (1.0,))
    dummy = {"bn": (torch.tensor([0.1, 0.0, 2.5]), torch.tensor([0.3, 0.5, 2.0]))}
    scale = torch.tensor([1.0, 10.0, 300.0])  # a trained layer's channels span such ranges
    scaled_target = LayerStatistics(target.mean * scale, target.var * scale**2, (1.0,))
    scaled_dummy = {"bn": (dummy["bn"][0] * scale, dummy["bn"][1] * scale**2)}

    prior = batch_statistics_distance([dummy], {"bn": target})
    scaled = batch_statistics_distance([scaled_dummy], {"bn": scaled_target})

    assert float(prior) > 0.1
    torch.testing.assert_close(scaled, prior)


def test_several_steps_leak_the_weighted_sum_of_each_steps_statistics() -> None:
    spec = get_dataset_spec("cifar10")
    torch.manual_seed(0)
    model_spec = ModelSpec("convnet64", spec.num_classes, spec.image_shape)
    model = build_model(model_spec)
    sent = {k: v.clone() for k, v in model.state_dict().items()}
    batches = [(torch.rand(2, *spec.image_shape), torch.tensor([1, 2])) for _ in range(3)]
    per_step = []
    for images, labels in batches:  # each step's statistics at that step's weights
        per_step.append(_statistics_of(model, normalize(images, spec)))
        train_steps(model, [(images, labels)], spec, lr=0.05, train_mode=True)
    model.load_state_dict(sent)
    train_steps(model, batches, spec, lr=0.05, train_mode=True)
    returned = model.state_dict()
    names = [n for n, _ in model.named_parameters()]
    observation = Observation(
        model=model_spec,
        dataset="cifar10",
        mean=spec.mean,
        std=spec.std,
        global_state=sent,
        client_update={n: returned[n] for n in names},
        client_buffers={n: v for n, v in returned.items() if n not in names},
        update_kind="weights",
        lr=0.05,
        local_steps=3,
        batch_size=2,
        num_examples=6,
        train_mode=True,
    )

    derived = leaked_batch_statistics(observation)

    _, weights = step_weights(0.1, 0, 3)
    total = sum(weights)
    assert derived["features.1"].weights == pytest.approx([w / total for w in weights])
    for name, layer in derived.items():
        mean = sum(w * step[name][0] for w, step in zip(weights, per_step, strict=True)) / total
        var = sum(w * step[name][1] for w, step in zip(weights, per_step, strict=True)) / total
        torch.testing.assert_close(layer.mean, mean, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(layer.var, var, atol=1e-4, rtol=1e-4)


def _statistics_of(model: torch.nn.Module, inputs: torch.Tensor) -> dict:
    with torch.no_grad(), recorded_statistics(batch_norm_layers(model.train())) as statistics:
        model(inputs)
    return statistics


def test_step_weights_follow_torchs_running_average() -> None:
    for momentum, before, steps, old, weights in [
        (0.1, 5, 1, 0.9, (0.1,)),
        (0.1, 0, 2, 0.81, (0.09, 0.1)),
        (None, 2, 2, 0.5, (0.25, 0.25)),
    ]:
        coefficient, per_step = step_weights(momentum, before, steps)
        assert coefficient == pytest.approx(old) and per_step == pytest.approx(weights)


def test_fedsgd_observation_has_no_buffers_and_ig_bn_says_its_fallback(
    tmp_path: Path, data_dir: Path
) -> None:
    request = AttackRequest(
        model="convnet64", train_mode=True, attack="ig-bn", iterations=2, out=tmp_path / "fedsgd"
    )
    run_attack(request, notice=lambda _: None)

    config = json.loads((tmp_path / "fedsgd" / "config.json").read_text())
    observation = Observation.load(tmp_path / "fedsgd" / "observation.safetensors")
    assert observation.buffer_names() == []
    prior = config["threat_model"]["batch_norm_prior"]
    assert prior["source"] == "running" and prior["reason"].startswith("fallback")
    assert config["threat_model"]["buffers_leaked"] == []


def test_ig_bn_on_a_capture_records_the_leaked_statistics(capture: Path, tmp_path: Path) -> None:
    out = tmp_path / "ig-bn"
    run_capture_attack(
        CaptureAttackRequest(run=capture, round=1, client=0, attack="ig-bn", iterations=2, out=out)
    )

    prior = json.loads((out / "config.json").read_text())["threat_model"]["batch_norm_prior"]
    assert prior["source"] == "leaked" and prior["layers"] == 8
    running = get_preset("ig-bn-running")
    observation, _ = load_capture(capture, 1, 0)
    assert prior_targets(observation, running.bn_statistics).source == "running"


def test_two_step_objective_with_the_prior_vanishes_at_the_true_batches(simulated_run) -> None:
    args = ["--model", "convnet64", "--clients", "1", "--rounds", "1", "--local-steps", "2"]
    run = simulated_run("bn-two-steps", [*args, "--batch-size", "2", "--lr", "0.05"])
    observation, truth = load_capture(run, 1, 0)
    observation = replace(observation, labels=truth.labels)
    objective = gradient_matching_objective(
        observation, get_preset("ig-bn", tv_weight=0.0, label_strategy="given"), "cpu"
    )
    inputs = normalize(truth.images, get_dataset_spec(observation.dataset))
    one_hot = torch.nn.functional.one_hot(truth.labels, observation.model.num_classes).float()

    loss, gap = objective(inputs, one_hot, {})

    assert prior_targets(observation, "leaked").reason.startswith("leaked")
    assert observation.local_steps == 2 and float(gap) < 1e-5 and float(loss) < 1e-5
