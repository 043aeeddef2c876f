"""A benchmark suite: TOML grids of attack cells, checked against the registries.

A suite file holds an optional ``description``, ``[settings]`` shared by every cell, and one
``[grid]`` table (or several ``[[grid]]`` tables, each with optional ``[grid.settings]`` that
override the shared ones). A grid's axes take a list (or one value); the suite's cells are the
product of each grid's axes::

    [settings]
    iterations = 200

    [grid]
    dataset = ["cifar10"]
    model = ["lenet"]
    attack = ["ig-fast"]
    defense = ["none", "clip:max_norm=1"]
    batch_size = [1, 2]
    seed = [0, 1]

``images`` is how many held-out images one seed draws (default: one batch); they are split
into consecutive batches of ``batch_size`` (a remainder short of a batch is left out), one cell
each, so a cell is one attack on one client batch. A cell's id hashes its canonical config,
the suite's name aside, so the same cell in two suites is run once per folder.

An optional ``[settings.federated]`` table (also allowed in ``[grid.settings]``, where its keys
override the suite's) makes every cell also measure utility with a Flower run of its dataset,
model, dropout and defense: the final test accuracy and, under dp-sgd, the clients' ε. With
it, ``secagg`` cells attack the round-1 secure aggregate of a small Flower run instead of one
FedSGD gradient, one cell per seed (the image draw does not apply to them).

An optional ``[settings.capture]`` table (:mod:`apps.bench.captures`) makes every cell attack a
client update captured in a one-round Flower run instead of a FedSGD gradient: one client per
batch of the draw, ``local_steps`` steps each, in the settings' train mode, the client's
BatchNorm buffers returned beside its weights. With ``[settings.victim]`` too, that round starts
from the trained victim's global weights instead of a fresh model.

An optional ``[settings.victim]`` table (:mod:`apps.bench.victims`) attacks a trained model: the
FedSGD gradient is taken at the global weights of a Flower FedAvg run trained first (one run per
dataset, model, dropout, seed and victim settings, shared by the cells).

An optional ``[report]`` table (:mod:`apps.bench.report_spec`) says how ``fedleak bench
report`` tabulates the cells and which goals it judges each row by; a goal naming a column
that no grid has is refused here.

A grid with ``kind = "NAME"`` holds cells of another kind (:mod:`apps.bench.kinds`, e.g.
``fusion``): its own axes, validated by that kind; ``[settings]`` and ``[grid.settings]``
belong to attack grids (``kind = "attack"``, the default) only.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from apps.bench.kinds import KINDS, KindCell, KindGrid
from apps.bench.report_spec import Goal, ReportSpec
from fedsim.errors import UnknownNameError, UserInputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

SUITES_DIR = Path(__file__).parent / "suites"
AGGREGATE_DEFENSES = ("secagg",)
"""Defenses that hide single updates: a federated suite attacks the round's secure aggregate."""


def _canonical_partition(text: str) -> str:
    from fedsim.flower.partitions import parse_partition

    try:
        return str(parse_partition(text))
    except UserInputError as error:
        raise ValueError(str(error)) from None


Partition = Annotated[str, AfterValidator(_canonical_partition)]
"""A partition spec (``iid``, ``dirichlet:ALPHA``, ``shards:K``), kept in canonical form."""


class Federated(BaseModel):
    """The Flower run that measures a cell's utility (see ``fedleak simulate`` for each key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    clients: int = Field(8, ge=1)
    rounds: int = Field(3, ge=1)
    local_epochs: int = Field(1, ge=0, description="passes over each partition; 0: one step")
    batch_size: int = Field(32, ge=1)
    lr: float = Field(0.05, gt=0, allow_inf_nan=False)
    partition: Partition = "dirichlet:0.5"
    test_images: int = Field(2000, ge=1, description="test images of the accuracy")


class Capture(BaseModel):
    """The Flower run a cell's attack reads its update from (see ``fedleak simulate``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    local_steps: int = Field(1, ge=1, description="SGD steps each client takes in its round")
    lr: float = Field(0.05, gt=0, allow_inf_nan=False)
    partition: Partition = "iid"
    clients: int = Field(
        1, ge=1, description="clients of the run: set per cell to the draw's batch count"
    )


class Victim(Federated):
    """The Flower FedAvg run that trains a cell's victim (see ``fedleak simulate``): each
    round, every client takes ``local_steps`` SGD steps (or ``local_epochs`` passes)."""

    local_epochs: int = Field(0, ge=0, description="passes over each partition; 0: local_steps")
    local_steps: int = Field(20, ge=1, description="SGD steps per client and round")

    @model_validator(mode="after")
    def _steps_or_epochs(self) -> Victim:
        from fedsim.flower.config import steps_or_epochs_problem

        problem = steps_or_epochs_problem(self.local_steps, self.local_epochs)
        if problem:
            raise ValueError(f"victim {problem}")
        return self


class Settings(BaseModel):
    """What stays fixed across a grid: the attack's budget, labels, data split, device."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    split: Literal["train", "test"] = "test"
    iterations: int | None = Field(None, ge=0)
    time_budget_s: float | None = Field(None, gt=0)
    restarts: int | None = Field(None, ge=1)
    labels: Literal["given", "idlg", "estimate"] | None = None
    adaptive: bool = Field(False, description="defense-aware matching, as `attack --adaptive`")
    train_mode: bool = False
    classes: tuple[int, ...] | None = Field(None, min_length=1)
    per_class: int | None = Field(
        None,
        ge=1,
        description="draw images in runs of this many of one class: repeated labels in a batch",
    )
    generator: str | None = Field(
        None, description="a shipped generator's name (e.g. cifar10-classes-0-4) or a path"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    federated: Federated | None = None
    capture: Capture | None = Field(
        None, description="attack clients' updates captured in a Flower run, not FedSGD"
    )
    victim: Victim | None = Field(
        None, description="attack a trained model: the global model of this Flower run"
    )

    @model_validator(mode="after")
    def _capture_or_federated(self) -> Settings:
        if self.capture is not None and self.federated is not None:
            raise ValueError(
                "settings.capture and settings.federated both set; valid: one of them (a "
                "capture cell attacks its own Flower run and measures no utility)"
            )
        return self


class Grid(BaseModel):
    """The axes of one grid; the cells are their product."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: tuple[str, ...] = Field(min_length=1)
    model: tuple[str, ...] = Field(min_length=1)
    attack: tuple[str, ...] = Field(min_length=1)
    defense: tuple[str, ...] = Field(("none",), min_length=1)
    batch_size: tuple[int, ...] = Field((1,), min_length=1)
    images: tuple[int, ...] | None = Field(None, min_length=1)
    seed: tuple[int, ...] = Field((0,), min_length=1)
    dropout: tuple[float, ...] = Field((0.0,), min_length=1)
    settings: Settings | None = None
    kind: Literal["attack"] = "attack"

    @field_validator(
        "dataset",
        "model",
        "attack",
        "defense",
        "batch_size",
        "images",
        "seed",
        "dropout",
        mode="before",
    )
    @classmethod
    def _one_value_is_a_list(cls, value: Any) -> Any:
        return value if isinstance(value, list | tuple) or value is None else [value]

    @field_validator("dataset")
    @classmethod
    def _known_datasets(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from fedsim.data import dataset_names

        return _known("dataset", names, dataset_names())

    @field_validator("model")
    @classmethod
    def _known_models(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from fedsim.models import model_names

        return _known("model", names, model_names())

    @field_validator("attack")
    @classmethod
    def _known_attacks(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from attacks import attack_names

        return _known("attack", names, attack_names())

    @field_validator("defense")
    @classmethod
    def _known_defenses(cls, specs: tuple[str, ...]) -> tuple[str, ...]:
        from defenses.specs import parse_defense

        for spec in specs:
            if spec == "none":
                continue
            try:
                # Suite checks that an aggregate defense comes with [settings.federated].
                parse_defense(spec, "simulate" if is_aggregate(spec) else "attack")
            except UnknownNameError as error:
                raise ValueError(f"{error}, none") from None
            except UserInputError as error:
                raise ValueError(str(error)) from None
        return specs

    @field_validator("batch_size", "images")
    @classmethod
    def _positive(cls, counts: tuple[int, ...] | None) -> tuple[int, ...] | None:
        bad = [count for count in counts or () if count < 1]
        if bad:
            raise ValueError(f"invalid count {bad[0]}; valid: integers ≥ 1")
        return counts

    @field_validator("dropout")
    @classmethod
    def _dropout_rates(cls, rates: tuple[float, ...]) -> tuple[float, ...]:
        bad = [rate for rate in rates if not 0.0 <= rate < 1.0]
        if bad:
            raise ValueError(f"invalid dropout {bad[0]}; valid: rates in [0, 1)")
        return rates

    @model_validator(mode="after")
    def _combinations(self) -> Grid:
        from fedsim.models import has_dropout, model_names

        if any(rate > 0 for rate in self.dropout):
            without = [name for name in self.model if not has_dropout(name)]
            if without:
                with_dropout = ", ".join(n for n in model_names() if has_dropout(n))
                raise ValueError(
                    f"model {without[0]!r} has no dropout layers, so dropout "
                    f"{max(self.dropout)} cannot apply; models with dropout: {with_dropout}"
                )
        for images in self.images or ():
            if images < max(self.batch_size):
                raise ValueError(
                    f"images {images} is fewer than batch_size {max(self.batch_size)}; valid: "
                    "images ≥ every batch_size (the draw is split into batches)"
                )
        return self


ATTACK_KIND = "attack"
"""The kind of a grid without ``kind``: gradient-inversion attack cells (:class:`Grid`)."""


def _grid_kind(value: Any) -> str:
    kind = value.get("kind", ATTACK_KIND) if isinstance(value, dict) else value.kind
    return str(kind)


AnyGrid = Annotated[
    Union[  # noqa: UP007  (a runtime tuple of members)
        tuple(
            [Annotated[Grid, Tag(ATTACK_KIND)]]
            + [Annotated[kind.grid, Tag(name)] for name, kind in KINDS.items()]
        )
    ],
    Discriminator(
        _grid_kind,
        custom_error_type="unknown_kind",
        custom_error_message=f"unknown grid kind; valid: {', '.join([ATTACK_KIND, *KINDS])}",
    ),
]
"""A ``[[grid]]`` table: an attack grid, or a kind's grid named by its ``kind``."""


class Suite(BaseModel):
    """A named campaign: shared settings and one or more grids of cells."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    settings: Settings = Settings()
    grid: tuple[AnyGrid, ...] = Field(min_length=1)
    report: ReportSpec = ReportSpec()

    def attack_grids(self) -> list[Grid]:
        """The grids of gradient-inversion attack cells (those without another ``kind``)."""
        return [grid for grid in self.grid if isinstance(grid, Grid)]

    @field_validator("grid", mode="before")
    @classmethod
    def _one_grid_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _classes_exist(self) -> Suite:
        from fedsim.data import get_dataset_spec

        for grid in self.attack_grids():
            classes = self.settings_of(grid).classes or ()
            for dataset in grid.dataset:
                count = get_dataset_spec(dataset).num_classes
                bad = [c for c in classes if not 0 <= c < count]
                if bad:
                    raise ValueError(f"class {bad[0]} not in {dataset}; valid: 0..{count - 1}")
        return self

    @model_validator(mode="after")
    def _aggregates_need_a_federated_run(self) -> Suite:
        from defenses.specs import parse_defense

        for number, grid in enumerate(self.grid):
            if not isinstance(grid, Grid) or self.settings_of(grid).federated is not None:
                continue
            for spec in filter(is_aggregate, grid.defense):
                where = "grid" if len(self.grid) == 1 else f"grid[{number}]"
                try:
                    parse_defense(spec, "attack")
                except UserInputError as error:
                    raise ValueError(
                        f"{where}.defense: {error}; or give the suite [settings.federated] to "
                        "attack the round-1 secure aggregate of a Flower run"
                    ) from None
        return self

    @model_validator(mode="after")
    def _goals_name_grid_values(self) -> Suite:
        column = self.report.columns
        if not any(column in type(grid).model_fields for grid in self.grid):
            return self
        values = {str(v) for grid in self.grid for v in getattr(grid, column, None) or ()}
        for goal in self.report.goals:
            for median in self.report.medians_of(goal):
                if median.column is not None and median.column not in values:
                    raise ValueError(
                        f"report goal {goal.name!r} reads {median.metric}[{median.column}], "
                        f"but no grid has {column} {median.column!r}; valid: "
                        f"{', '.join(sorted(values))}"
                    )
        return self

    def settings_of(self, grid: Grid) -> Settings:
        """The suite's settings with the grid's own overrides applied (key by key, also inside
        ``federated``)."""
        if grid.settings is None:
            return self.settings
        given = {k: getattr(grid.settings, k) for k in grid.settings.model_fields_set}
        ours, theirs = self.settings.federated, given.get("federated")
        if ours is not None and theirs is not None:
            update = {k: getattr(theirs, k) for k in theirs.model_fields_set}
            given["federated"] = ours.model_copy(update=update)
        return self.settings.model_copy(update=given)

    def overriding(self, **values: object) -> Suite:
        """This suite with the given settings (those not None) in force for every grid, over the
        suite's and each grid's own; a bad value raises one line naming it."""
        given = {key: value for key, value in values.items() if value is not None}
        try:
            Settings.model_validate(given)
        except ValidationError as error:
            raise UserInputError(f"suite {self.name!r}: {_one_line(error, False)}") from None

        def override(settings: Settings | None) -> Settings | None:
            if settings is None:
                return None
            return settings.model_copy(
                update={k: v for k, v in given.items() if k in settings.model_fields_set}
            )

        grids = tuple(
            grid.overriding(**given)
            if isinstance(grid, KindGrid)
            else grid.model_copy(update={"settings": override(grid.settings)})
            for grid in self.grid
        )
        return self.model_copy(
            update={"settings": self.settings.model_copy(update=given), "grid": grids}
        )

    def has_federated(self) -> bool:
        """Whether any grid's cells also run a Flower simulation."""
        return any(self.settings_of(grid).federated is not None for grid in self.attack_grids())

    def has_victims(self) -> bool:
        """Whether any grid's cells attack a model trained by a Flower run first."""
        return any(self.settings_of(grid).victim is not None for grid in self.attack_grids())

    def has_captures(self) -> bool:
        """Whether any grid's cells attack updates captured in a Flower run."""
        return any(self.settings_of(grid).capture is not None for grid in self.attack_grids())

    def cells(self) -> list[Cell | KindCell]:
        """Every cell of every grid, in grid order, each once (reads the datasets' sizes)."""
        from attacks import get_preset

        draws: dict[tuple, list[int]] = {}
        cells: dict[str, Cell | KindCell] = {}
        for grid in self.grid:
            if isinstance(grid, KindGrid):
                for kind_cell in grid.cells():
                    cells.setdefault(kind_cell.cell_id, kind_cell)
                continue
            settings = self.settings_of(grid)
            axes = itertools.product(
                grid.dataset,
                grid.model,
                grid.dropout,
                grid.attack,
                grid.defense,
                grid.batch_size,
                grid.images or (None,),
                grid.seed,
            )
            for dataset, model, dropout, attack, defense, batch_size, images, seed in axes:
                count = images or batch_size
                starts = range(0, count - batch_size + 1, batch_size)
                # An aggregate's images are its Flower run's clients' batches, not the draw.
                aggregate = settings.federated is not None and is_aggregate(defense)
                # A capture's images are its clients' train batches, one client per batch.
                capture = settings.capture
                if capture is not None:
                    capture = capture.model_copy(update={"clients": len(starts)})
                key = (dataset, settings.split, count, seed, settings.classes, settings.per_class)
                if key not in draws and not aggregate and capture is None:
                    draws[key] = _draw(dataset, settings, count, seed)
                uses_generator = get_preset(attack).search == "generator"
                for batch, start in enumerate(starts[:1] if aggregate else starts):
                    undrawn = aggregate or capture is not None
                    indices = () if undrawn else tuple(draws[key][start : start + batch_size])
                    cell = Cell(
                        dataset=dataset,
                        split=settings.split,
                        model=model,
                        dropout=dropout,
                        train_mode=settings.train_mode,
                        attack=attack,
                        defense=defense,
                        batch_size=batch_size,
                        images=_cell_images(settings, aggregate, count, batch_size),
                        batch=batch,
                        seed=seed,
                        classes=settings.classes,
                        per_class=settings.per_class,
                        indices=indices,
                        iterations=settings.iterations,
                        time_budget_s=settings.time_budget_s,
                        restarts=settings.restarts,
                        labels=settings.labels,
                        adaptive=settings.adaptive,
                        generator=settings.generator if uses_generator else None,
                        device=settings.device,
                        federated=settings.federated,
                        capture=capture,
                        victim=settings.victim,
                    )
                    cells.setdefault(cell.cell_id, cell)
        return list(cells.values())


class Cell(BaseModel):
    """One job: one attack on one client batch (on a secure aggregate for ``secagg`` with
    ``federated``, or on client ``batch``'s update in a Flower run with ``capture``; then
    ``indices`` is empty), and with ``federated`` a Flower run measuring utility. Its
    canonical JSON names it (``cell_id``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    split: Literal["train", "test"]
    model: str
    dropout: float
    train_mode: bool
    attack: str
    defense: str
    batch_size: int
    images: int = Field(
        description="images one seed draws, batch_size of them form this cell (an aggregate: "
        "the clients' batches summed; a capture: the client's steps' batches)"
    )
    batch: int = Field(description="which batch of the draw, from 0")
    seed: int
    classes: tuple[int, ...] | None
    indices: tuple[int, ...]
    iterations: int | None
    time_budget_s: float | None
    restarts: int | None
    labels: Literal["given", "idlg", "estimate"] | None
    generator: str | None
    device: Literal["auto", "cpu", "cuda"]
    federated: Federated | None = None
    adaptive: bool = False
    capture: Capture | None = None
    per_class: int | None = None
    victim: Victim | None = None

    def config_json(self) -> str:
        """The canonical JSON of this cell: sorted keys, no spaces."""
        values = self.model_dump(mode="json")
        if values["per_class"] is None:
            del values["per_class"]  # cells of plain draws keep their earlier ids
        if values["federated"] is None:
            del values["federated"]  # cells without a Flower run keep their earlier ids
        if values["capture"] is None:
            del values["capture"]  # likewise cells that attack FedSGD gradients
        if values["victim"] is None:
            del values["victim"]  # likewise cells of untrained models
        if not values["adaptive"]:
            del values["adaptive"]  # likewise cells of attacks that ignore the defenses
        return json.dumps(values, sort_keys=True, separators=(",", ":"))

    def generator_file(self) -> Path | None:
        """The generator checkpoint: a shipped one's file, else ``generator`` as a path."""
        if self.generator is None:
            return None
        from attacks.generators import SHIPPED_DIR

        shipped = SHIPPED_DIR / f"{self.generator}.safetensors"
        return shipped if shipped.is_file() else Path(self.generator)

    def store_fields(self) -> dict[str, object]:
        """The store's descriptive columns of this cell."""
        return {
            "dataset": self.dataset,
            "model": self.model,
            "attack": self.attack,
            "defense": self.defense,
            "batch_size": self.batch_size,
            "images": self.images,
            "seed": self.seed,
        }

    def defenses(self) -> tuple[str, ...]:
        """The cell's defense as the ``defenses`` a request or a run takes (``none`` → none)."""
        return () if self.defense == "none" else (self.defense,)

    def attack_settings(self) -> dict[str, object]:
        """What every attack request of this cell sets, whatever it attacks."""
        return {
            "attack": self.attack,
            "iterations": self.iterations,
            "time_budget_s": self.time_budget_s,
            "restarts": self.restarts,
            "seed": self.seed,
            "labels": self.labels,
            "adaptive": self.adaptive,
            "generator": self.generator_file(),
            "device": self.device,
        }

    @property
    def attacks_capture(self) -> bool:
        """Whether the attack targets a client update captured in a Flower run."""
        return self.capture is not None

    @property
    def attacks_aggregate(self) -> bool:
        """Whether the attack targets a Flower run's secure aggregate, not a FedSGD gradient."""
        return self.federated is not None and is_aggregate(self.defense)

    @property
    def cell_id(self) -> str:
        """16 hex digits of the SHA-256 of :meth:`config_json`."""
        return hashlib.sha256(self.config_json().encode()).hexdigest()[:16]

    def label(self) -> str:
        """A short human name: dataset/model/attack/defense, batch, seed and draw."""
        dropout = f" p{self.dropout:g}" if self.dropout else ""
        return (
            f"{self.dataset}/{self.model}{dropout}/{self.attack}/{self.defense} "
            f"b{self.batch_size} seed {self.seed} #{self.batch}"
        )


def _cell_images(settings: Settings, aggregate: bool, count: int, batch_size: int) -> int:
    """A cell's ``images``: the draw's count, an aggregate's clients' batches summed, or a
    captured client's images (its steps' batches)."""
    if aggregate and settings.federated is not None:
        return settings.federated.clients * batch_size
    if settings.capture is not None:
        return settings.capture.local_steps * batch_size
    return count


def is_aggregate(defense: str) -> bool:
    """Whether a defense spec (``secagg``, ``secagg:drop=1``) leaves only an aggregate."""
    return defense.partition(":")[0].strip().lower() in AGGREGATE_DEFENSES


def suite_names() -> list[str]:
    """The built-in suites (TOML files shipped in ``apps/bench/suites``)."""
    return sorted(path.stem for path in SUITES_DIR.glob("*.toml"))


def load_suite(name_or_file: str | Path) -> Suite:
    """A built-in suite by name, or a suite TOML file; a bad one raises one clear line."""
    path = Path(name_or_file)
    if not path.is_file():
        if path.suffix == ".toml" or len(path.parts) > 1:
            raise UserInputError(f"no suite file {str(path)!r}")
        if str(name_or_file) not in suite_names():
            raise UnknownNameError("suite", str(name_or_file), suite_names())
        path = SUITES_DIR / f"{name_or_file}.toml"
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UserInputError(f"suite {str(path)!r} is not valid TOML: {error}") from None
    data.setdefault("name", path.stem)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as error:
        single_grid = isinstance(data.get("grid"), dict)
        raise UserInputError(f"suite {str(path)!r}: {_one_line(error, single_grid)}") from None
    return _resolve_generators(suite, path.parent)


def _known(kind: str, names: Iterable[str], valid: Iterable[str]) -> tuple[str, ...]:
    valid = list(valid)
    for name in names:
        if name not in valid:
            raise ValueError(str(UnknownNameError(kind, name, valid)))
    return tuple(names)


def _draw(dataset: str, settings: Settings, count: int, seed: int) -> list[int]:
    from apps.bench.images import image_indices

    draw = image_indices(
        dataset, count, seed, settings.classes, settings.split, per_class=settings.per_class
    )
    if len(draw) < count:
        of = f" of classes {list(settings.classes)}" if settings.classes else ""
        raise UserInputError(
            f"images {count} is more than the {len(draw)} {dataset} {settings.split} "
            f"images{of}; valid: images ≤ {len(draw)}"
        )
    return draw


def _resolve_generators(suite: Suite, base: Path) -> Suite:
    """Shipped generator names stay names; paths become absolute (relative to the suite)."""
    from attacks.generators import SHIPPED_DIR

    def resolve(settings: Settings | None) -> Settings | None:
        if settings is None or settings.generator is None:
            return settings
        if (SHIPPED_DIR / f"{settings.generator}.safetensors").is_file():
            return settings
        path = (base / settings.generator).resolve()
        if not path.is_file():
            shipped = sorted(p.stem for p in SHIPPED_DIR.glob("*.safetensors"))
            raise UserInputError(
                f"suite {suite.name!r}: no generator {settings.generator!r}; valid: a path to "
                f"a checkpoint, or one of {', '.join(shipped)}"
            )
        return settings.model_copy(update={"generator": str(path)})

    grids = tuple(
        grid.model_copy(update={"settings": resolve(grid.settings)})
        if isinstance(grid, Grid)
        else grid
        for grid in suite.grid
    )
    return suite.model_copy(update={"settings": resolve(suite.settings), "grid": grids})


_KEYS = {
    "suite": Suite,
    "grid": Grid,
    "settings": Settings,
    "federated": Federated,
    "capture": Capture,
    "victim": Victim,
    "report": ReportSpec,
    "goals": Goal,
}


def _one_line(error: ValidationError, single_grid: bool) -> str:
    """The first problem: where, the bad value, and what is valid."""
    first = error.errors()[0]
    loc = list(first["loc"])
    keys = dict(_KEYS)
    if loc[:1] == ["grid"] and len(loc) > 2 and isinstance(loc[1], int):
        kind = str(loc.pop(2))  # the grid's kind, which pydantic puts in the path
        keys["grid"] = KINDS[kind].grid if kind in KINDS else Grid
    if single_grid and loc[:2] == ["grid", 0]:
        del loc[1]
    where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
    if first["type"] == "unknown_kind":
        kind = first["input"].get("kind") if isinstance(first["input"], dict) else None
        return f"{where}: unknown kind {kind!r}; valid: {', '.join([ATTACK_KIND, *KINDS])}"
    if first["type"] == "extra_forbidden":
        parent = next((str(p) for p in reversed(loc[:-1]) if isinstance(p, str)), "suite")
        valid = [k for k in keys[parent].model_fields if k != "name"]
        return f"unknown key {where!r}; valid: {', '.join(valid)}"
    if first["type"] == "missing":
        return f"{where} is missing"
    if not where:
        return first["msg"].removeprefix("Value error, ")
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "value_error":
        return f"{where}: {message}"
    return f"invalid {where} {first.get('input')!r}: {message}"
