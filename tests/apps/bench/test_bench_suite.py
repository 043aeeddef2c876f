"""Suites: the built-in grids, cell identity, and one clear line for every bad suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.bench.images import image_indices
from apps.bench.suite import load_suite, suite_names
from fedsim.errors import UserInputError

TINY = """
[settings]
iterations = 5
device = "cpu"

[grid]
dataset = "mnist"
model = "lenet"
attack = "ig-fast"
batch_size = [1, 2]
images = [4]
seed = [0, 1]
"""


def write_suite(tmp_path: Path, text: str, name: str = "suite") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_builtin_suites_expand_to_their_grids(data_dir: Path) -> None:
    quick, dia, gifd, demo = (load_suite(name).cells() for name in ("quick", "dia", "gifd", "demo"))

    assert suite_names() == [
        "batchnorm",
        "batchnorm-budget",
        "batchnorm-trained",
        "defense-aware",
        "demo",
        "dia",
        "dta",
        "fusion",
        "gifd",
        "gifd-regime",
        "privacy-utility",
        "quick",
    ]
    # quick: 2 defenses × 2 batch sizes × 2 seeds; dia: 2 datasets × 2 models × 3 rates ×
    # 3 attacks × 8 images; gifd: 3 settings (in, ood, ood-mnist) × 3 attacks × (8 + 2) batches.
    # demo: 8 images at batch 1 and at batch 2.
    assert (len(quick), len(dia), len(gifd), len(demo)) == (8, 288, 90, 12)
    assert {(c.model, c.train_mode, c.labels, c.iterations) for c in demo} == {
        ("resnet18", False, "estimate", 200)
    }
    assert {c.defense for c in quick} == {"none", "clip:max_norm=1"}
    assert {c.dropout for c in dia} == {0.1, 0.25, 0.5}
    assert {c.attack for c in dia} == {"dia-no-masks", "dia", "wiig"}
    assert {(c.iterations, c.device) for c in dia} == {(1000, "cpu")}
    digits = [c for c in gifd if c.dataset == "mnist-rgb32"]
    assert {c.generator for c in digits if c.attack != "ig-fast"} == {"cifar10"}
    assert {c.time_budget_s for c in gifd} == {60.0}
    ood = [c for c in gifd if c.classes is not None]
    assert {c.generator for c in ood if c.attack == "gifd"} == {"cifar10-classes-0-4"}
    assert {c.generator for c in ood if c.attack == "ig-fast"} == {None}
    draw = image_indices("cifar10", 8, 0, {5, 6, 7, 8, 9})  # what the GIFD benchmark drew
    batches = sorted(c.indices for c in ood if c.attack == "gifd" and c.batch_size == 4)
    assert batches == sorted([tuple(draw[:4]), tuple(draw[4:])])


def test_the_gifd_regime_suite_holds_the_papers_rows(data_dir: Path) -> None:
    cells = load_suite("gifd-regime").cells()

    # 4 attacks × 8 images: defended batch 4 (6 defenses × 2 batches), batch 1 and 8 (2 × (8 + 1)),
    # repeated labels (2 × 1), trained victim (2 × 2), out of distribution (1 × 2).
    assert len(cells) == 4 * (12 + 18 + 2 + 4 + 2)
    assert {c.attack for c in cells} == {"ig-fast", "gan-latent", "gifd", "gifd-pixels"}
    assert {(c.adaptive, c.time_budget_s, c.model) for c in cells} == {(True, 180.0, "resnet18")}
    repeated = [c for c in cells if c.per_class == 2]
    assert {c.batch_size for c in repeated} == {8} and len(repeated) == 8
    trained = {c.victim for c in cells if c.victim is not None}
    assert [(v.clients, v.rounds, v.local_steps) for v in trained] == [(8, 20, 20)]
    searched = {(c.classes is None, c.generator) for c in cells if c.attack != "ig-fast"}
    assert searched == {(True, "cifar10-conditional"), (False, "cifar10-classes-0-4")}


def test_overriding_a_setting_reaches_every_grid(data_dir: Path) -> None:
    suite = load_suite("gifd-regime")
    regime = suite.cells()

    cells = suite.overriding(restarts=1, time_budget_s=None).cells()

    # the victim, repeated-label and out-of-distribution grids' own settings yield too
    assert {c.restarts for c in regime} == {None} and {c.restarts for c in cells} == {1}
    assert [c.model_copy(update={"restarts": 1}) for c in regime] == cells
    assert {c.time_budget_s for c in cells} == {180.0}
    with pytest.raises(UserInputError, match="restarts"):
        suite.overriding(restarts=0)


def test_the_batchnorm_trained_suite_captures_rounds_of_one_trained_victim(data_dir: Path) -> None:
    cells = load_suite("batchnorm-trained").cells()

    # 2 models × (3 train-mode attacks + the eval-mode control) × 2 batches of 4.
    assert len(cells) == 16
    assert {(c.batch_size, c.capture.local_steps) for c in cells} == {(4, 1)}
    assert {(c.victim.clients, c.victim.rounds, c.victim.local_steps) for c in cells} == {
        (2, 10, 30)
    }
    assert {(c.attack, c.train_mode) for c in cells} == {
        ("ig-fast", True),
        ("ig-bn", True),
        ("ig-bn-running", True),
        ("ig-fast", False),
    }


def test_the_batchnorm_budget_suite_sweeps_the_steps(data_dir: Path) -> None:
    cells = load_suite("batchnorm-budget").cells()

    # 2 budgets × (2 train-mode attacks + the eval-mode control) × 2 batches of 4.
    assert len(cells) == 12
    assert {(c.model, c.batch_size, c.capture.local_steps) for c in cells} == {("convnet64", 4, 1)}
    runs = {(c.iterations, c.attack, c.train_mode) for c in cells}
    assert runs == {
        (steps, attack, mode)
        for steps in (200, 1000)
        for attack, mode in (("ig-fast", True), ("ig-bn", True), ("ig-fast", False))
    }


def test_cells_split_each_seeds_draw_into_batches(tmp_path: Path, data_dir: Path) -> None:
    cells = load_suite(write_suite(tmp_path, TINY)).cells()

    # images 4 per seed: 4 batches of 1 and 2 of 2, for each of 2 seeds.
    assert len(cells) == 12
    assert len({c.cell_id for c in cells}) == 12
    for seed in (0, 1):
        draw = image_indices("mnist", 4, seed)
        ones = [c.indices for c in cells if c.seed == seed and c.batch_size == 1]
        twos = [c.indices for c in cells if c.seed == seed and c.batch_size == 2]
        assert ones == [(i,) for i in draw] and twos == [tuple(draw[:2]), tuple(draw[2:])]


def test_cell_ids_follow_the_config_not_the_file(tmp_path: Path, data_dir: Path) -> None:
    first = load_suite(write_suite(tmp_path, TINY, "a")).cells()
    reordered = "description = 'same'\n" + TINY.replace("seed = [0, 1]", "seed = [1, 0]")
    again = load_suite(write_suite(tmp_path, reordered, "b")).cells()
    longer = load_suite(write_suite(tmp_path, TINY.replace("= 5", "= 6"), "c")).cells()

    assert {c.cell_id for c in first} == {c.cell_id for c in again}
    assert not {c.cell_id for c in first} & {c.cell_id for c in longer}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("[settings]", "[settings]\nrestart = 2"), "unknown key 'settings.restart'; valid: split"),
        (("[grid]", "[grid]\nmodels = ['lenet']"), "unknown key 'grid.models'; valid: dataset"),
        (("[settings]", "colour = 1\n[settings]"), "unknown key 'colour'; valid: description"),
        (('"ig-fast"', '"ig-faster"'), "grid.attack: unknown attack 'ig-faster'; valid: dia"),
        (('"lenet"', '"lenet5"'), "grid.model: unknown model 'lenet5'; valid: convnet64"),
        (('"mnist"', '"cifar100"'), "grid.dataset: unknown dataset 'cifar100'; valid: cifar10"),
        (("[grid]", "[grid]\ndefense = 'blur:sigma=1'"), "unknown defense 'blur'; valid: clip"),
        (("[grid]", "[grid]\ndefense = 'clip'"), "defense 'clip' needs max_norm=…"),
        (("[grid]", "[grid]\ndefense = 'secagg'"), "acts on a federated run"),
        (("[grid]", "[grid]\ndropout = 0.5"), "model 'lenet' has no dropout layers"),
        (("[settings]", "[settings]\nlabels = 'guess'"), "invalid settings.labels 'guess'"),
        (("iterations = 5", "iterations = -5"), "invalid settings.iterations -5"),
        (("images = [4]", "images = [1]"), "images 1 is fewer than batch_size 2"),
        (("images = [4]", "images = [0]"), "grid.images: invalid count 0; valid: integers ≥ 1"),
        (("[settings]", "[settings]\nclasses = [10]"), "class 10 not in mnist; valid: 0..9"),
        (('model = "lenet"\n', ""), "grid.model is missing"),
        (("[grid]", "[grid\n"), "is not valid TOML"),
    ],
)
def test_a_bad_suite_is_one_line_naming_the_value(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    path = write_suite(tmp_path, TINY.replace(*edit))

    with pytest.raises(UserInputError) as raised:
        load_suite(path)

    message = str(raised.value)
    assert "\n" not in message
    assert str(path) in message and expected in message


def test_a_grid_array_names_the_grid(tmp_path: Path) -> None:
    text = TINY.replace("[grid]", "[[grid]]") + '\n[[grid]]\ndataset = "mnist"\nmodel = "mlp"\n'
    path = write_suite(tmp_path, text + 'attack = "dlg"\n[grid.settings]\nsplit = "val"\n')

    with pytest.raises(UserInputError, match=r"invalid grid\[1\]\.settings\.split 'val'"):
        load_suite(path)


def test_more_images_than_the_data_holds_is_refused(tmp_path: Path, data_dir: Path) -> None:
    text = TINY.replace("images = [4]", "images = [99999]")

    with pytest.raises(UserInputError, match="images 99999 is more than the 10000 mnist test"):
        load_suite(write_suite(tmp_path, text)).cells()


def test_unknown_suite_names_the_builtins() -> None:
    valid = (
        "valid: batchnorm, batchnorm-budget, batchnorm-trained, defense-aware, demo, dia, dta, "
        "fusion, gifd, gifd-regime, privacy-utility, quick"
    )
    with pytest.raises(UserInputError, match=f"unknown suite 'quik'; {valid}"):
        load_suite("quik")
    with pytest.raises(UserInputError, match="no suite file 'nowhere/x.toml'"):
        load_suite("nowhere/x.toml")


def test_cli_prints_a_bad_suite_as_one_line(tmp_path: Path, run_cli) -> None:
    path = write_suite(tmp_path, TINY.replace('"lenet"', '"lenet5"'))

    code, _, err = run_cli(["bench", "--suite", str(path), "--out", str(tmp_path / "out")])

    assert code == 2
    assert err.strip().count("\n") == 0 and "unknown model 'lenet5'" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["bench"], "needs --suite NAME|FILE and --out DIR"),
        (["bench", "--suite", "quick", "export", "x"], "belong to `fedleak bench`"),
        (["bench", "--suite", "quick", "--out", "x", "--restarts", "0"], "restarts"),
    ],
)
def test_cli_usage_mistakes(args: list[str], expected: str, run_cli) -> None:
    code, _, err = run_cli(args)

    assert code == 2 and expected in err
