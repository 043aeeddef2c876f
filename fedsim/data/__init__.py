"""Labelled image datasets: the registry, where each split is found, and pixel normalisation."""

from fedsim.data.image_dataset import ImageDataset
from fedsim.data.normalization import denormalize, normalize
from fedsim.data.registry import DatasetSpec, dataset_names, get_dataset_spec
from fedsim.data.sources import DATA_DIR_ENV, SPLITS, load_dataset

__all__ = [
    "DATA_DIR_ENV",
    "SPLITS",
    "DatasetSpec",
    "ImageDataset",
    "dataset_names",
    "denormalize",
    "get_dataset_spec",
    "load_dataset",
    "normalize",
]
