"""The datasets fedleak knows: shapes, class names and normalisation constants.

Besides the datasets read from their own files, a *view* serves another dataset's images in a
different shape: ``mnist-rgb32`` is MNIST's images (same files, splits, labels) resized to
32×32 and repeated to 3 channels, normalised like CIFAR-10, so that CIFAR-10's models and
generators apply unchanged (GIFD's out-of-distribution setting, Fang et al. 2023).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    view_of: str | None = None
    """For a view, the dataset whose files and labels it serves, converted to ``image_shape``."""

    @property
    def source_name(self) -> str:
        """The dataset whose files hold the images: ``view_of`` for a view, else ``name``."""
        return self.view_of or self.name

    @property
    def num_classes(self) -> int:
        """Number of classes (labels run 0 .. num_classes - 1)."""
        return len(self.class_names)

    @property
    def channels(self) -> int:
        """Colour channels per image: 3 for RGB, 1 for greyscale."""
        return self.image_shape[0]


def image_view(
    base: DatasetSpec,
    name: str,
    image_shape: tuple[int, int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> DatasetSpec:
    """A view of ``base``: its images converted to ``image_shape`` (greyscale repeated to RGB or
    RGB to luma, then resized bilinearly with antialiasing), normalised with ``mean``/``std``."""
    return replace(base, name=name, image_shape=image_shape, mean=mean, std=std, view_of=base.name)


_FILES = {
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
_VIEWS = {
    spec.name: spec
    for spec in (
        image_view(
            _FILES["mnist"],
            "mnist-rgb32",
            _FILES["cifar10"].image_shape,
            _FILES["cifar10"].mean,
            _FILES["cifar10"].std,
        ),
    )
}
_SPECS = {**_FILES, **_VIEWS}


def dataset_names() -> list[str]:
    """Names of all registered datasets, sorted."""
    return sorted(_SPECS)


def get_dataset_spec(name: str) -> DatasetSpec:
    """The spec registered under ``name``; raises UnknownNameError otherwise."""
    try:
        return _SPECS[name]
    except KeyError:
        raise UnknownNameError("dataset", name, _SPECS) from None
