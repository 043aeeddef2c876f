"""Defense names and parameters: parsed once, canonical, and refused in one clear line."""

from __future__ import annotations

import pytest

from defenses.specs import defense_names, parse_defense, parse_defenses
from fedsim.errors import UserInputError


def test_parses_parameters_into_a_canonical_spec() -> None:
    spec = parse_defense("DP-SGD: noise_multiplier=1.5, max_grad_norm=2")
    assert spec.name == "dp-sgd"
    assert str(spec) == "dp-sgd:noise_multiplier=1.5,max_grad_norm=2.0,delta=1e-05"
    assert parse_defense(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("blur", "unknown defense 'blur'; valid: clip, dp-sgd, dropout"),
        ("clip", "defense 'clip' needs max_norm=…; usage: clip:max_norm=…"),
        ("clip:max_norm=0", "invalid clip parameter max_norm='0': input should be greater than 0"),
        ("clip:norm=1", "unknown parameter 'norm' of defense 'clip'; valid: max_norm"),
        ("quantize:bits=4.5", "invalid quantize parameter bits='4.5'"),
        ("prune:fraction", "write parameters as k=v; usage: prune:fraction=…"),
        ("dropout:p=1", "invalid dropout parameter p='1': input should be less than 1"),
    ],
)
def test_bad_defense_names_the_value_and_what_is_valid(text: str, message: str) -> None:
    with pytest.raises(UserInputError, match=message.replace("(", r"\(")) as error:
        parse_defense(text)
    assert "\n" not in str(error.value)


def test_aggregation_defenses_are_refused_on_a_single_gradient() -> None:
    with pytest.raises(UserInputError, match="'secagg' acts on a federated run"):
        parse_defense("secagg", "attack")
    assert parse_defense("secagg", "simulate").name == "secagg"


def test_the_same_defense_twice_is_refused() -> None:
    with pytest.raises(UserInputError, match="defense 'clip' given twice"):
        parse_defenses(["clip:max_norm=1", "clip:max_norm=2"], "simulate")


def test_registry_lists_every_family_of_the_issue() -> None:
    assert {"clip", "gaussian", "prune", "quantize", "dp-sgd", "dropout", "secagg"} <= set(
        defense_names()
    )
    assert {"flower-dp-client", "flower-dp-server", "flower-dp-adaptive", "local-dp"} <= set(
        defense_names()
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["attack", "--defense", "blur"], "unknown defense 'blur'; valid: clip"),
        (["attack", "--defense", "secagg"], "'secagg' acts on a federated run"),
        (["simulate", "--defense", "gaussian:std=-1"], "invalid gaussian parameter std='-1'"),
        (
            [
                "simulate",
                "--defense",
                "secagg",
                "--defense",
                "local-dp:clipping_norm=1,sensitivity=1,epsilon=1,delta=0.1",
            ],
            "defense 'local-dp' acts on individual updates, which secagg hides",
        ),
        (["simulate", "--clients", "4", "--defense", "secagg:threshold=2"], "valid: 3..4"),
        (["attack", "--model", "lenet", "--defense", "dropout:p=0.5"], "has no dropout layers"),
    ],
)
def test_cli_prints_one_line_and_exits_2(run_cli, args: list[str], message: str) -> None:
    code, out, err = run_cli(args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
