"""Generative image priors: staged generators, their checkpoints and their training."""

from attacks.generators.biggan import BigGANRecord, BigGANStages, load_biggan
from attacks.generators.checkpoint import (
    SHIPPED_DIR,
    GeneratorRecord,
    generator_for,
    load_generator,
    save_generator,
    shipped_generator_path,
)
from attacks.generators.dcgan import StagedGenerator

__all__ = [
    "SHIPPED_DIR",
    "BigGANRecord",
    "BigGANStages",
    "GeneratorRecord",
    "StagedGenerator",
    "generator_for",
    "load_biggan",
    "load_generator",
    "save_generator",
    "shipped_generator_path",
]
