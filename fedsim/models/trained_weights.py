"""A trained model's weights to attack: a ``fedleak simulate`` run's global model after its last
round (``final_weights.safetensors``, or the run folder holding it)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from fedsim.errors import UserInputError


def weights_file(path: Path) -> Path:
    """The weights file ``path`` names (itself, or the run folder's final weights); one line
    naming what is valid where there is none."""
    from fedsim.flower.run_dir import FINAL_WEIGHTS_FILE

    path = Path(path)
    file = path / FINAL_WEIGHTS_FILE if path.is_dir() else path
    if not file.is_file():
        usage = f"a {FINAL_WEIGHTS_FILE} file or the `fedleak simulate` run folder holding it"
        raise UserInputError(f"no weights at {str(path)!r}; valid: {usage}")
    return file


def load_trained_weights(model: nn.Module, model_name: str, path: Path) -> dict[str, str]:
    """Load the weights at ``path`` into ``model`` (every tensor, strictly) and return the
    file's metadata; a missing file, another model's weights or a mismatch raise one line."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    file = weights_file(path)
    try:
        with safe_open(str(file), "pt") as handle:
            metadata = dict(handle.metadata() or {})
        state = load_file(str(file))
    except (SafetensorError, OSError) as error:
        raise UserInputError(
            f"cannot read weights {str(file)!r} ({error}); valid: a safetensors state dict"
        ) from None
    made_for = metadata.get("model")
    if made_for is not None and made_for != model_name:
        raise UserInputError(
            f"weights {str(file)!r} are a {made_for!r} model's; the model here is {model_name!r}"
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise UserInputError(f"weights {str(file)!r} do not fit {model_name!r}: {first}") from None
    return metadata
