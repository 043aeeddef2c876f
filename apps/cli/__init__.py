"""The ``fedleak`` command line: commands named by the user's verb, one-line errors, ``--json``.

Each command lives in its own module and registers itself on the one ``app``.
"""

from apps.cli import (  # noqa: F401  (registers the commands)
    attack,
    bench,
    demo,
    dta,
    fusion,
    generator_ceiling,
    listings,
    simulate,
    train_generator,
    view,
)
from apps.cli.app import app, main

__all__ = ["app", "main"]
