"""The datasets fedleak knows: shapes, class names and normalisation constants."""

from __future__ import annotations

from dataclasses import dataclass

from fedsim.errors import UnknownNameError


@dataclass(frozen=True)
class DatasetSpec:
    """What fedleak needs to know about one labelled image dataset."""

    name: str
    hf_id: str
    image_column: str
    label_column: str
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def num_classes(self) -> int:
        """Number of classes (labels run 0 .. num_classes - 1)."""
        return len(self.class_names)

    @property
    def channels(self) -> int:
        """Colour channels per image: 3 for RGB, 1 for greyscale."""
        return self.image_shape[0]


_SPECS = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="cifar10",
            hf_id="uoft-cs/cifar10",
            image_column="img",
            label_column="label",
            image_shape=(3, 32, 32),
            class_names=(
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ),
            mean=(0.4914, 0.4822, 0.4465),
            std=(0.2470, 0.2435, 0.2616),
        ),
        DatasetSpec(
            name="mnist",
            hf_id="ylecun/mnist",
            image_column="image",
            label_column="label",
            image_shape=(1, 28, 28),
            class_names=tuple(str(digit) for digit in range(10)),
            mean=(0.1307,),
            std=(0.3081,),
        ),
    )
}


def dataset_names() -> list[str]:
    """Names of all registered datasets, sorted."""
    return sorted(_SPECS)


def get_dataset_spec(name: str) -> DatasetSpec:
    """The spec registered under ``name``; raises UnknownNameError otherwise."""
    try:
        return _SPECS[name]
    except KeyError:
        raise UnknownNameError("dataset", name, _SPECS) from None
