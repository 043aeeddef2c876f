"""Perturbation specs as the CLI writes them: ``none``, ``fgsm:eps=E``, ``pgd:eps=E,steps=S``,
``blur:sigma=S`` (ε on the [0, 1] pixel scale, σ in pixels; a real value may be written as a
fraction, ``eps=4/255``)."""

from __future__ import annotations

from dataclasses import dataclass

from fedsim.errors import UserInputError

PERTURBATIONS = {
    "none": {},
    "fgsm": {"eps": float},
    "pgd": {"eps": float, "steps": int},
    "blur": {"sigma": float},
}
_DEFAULTS = {"pgd": {"steps": 10}}
_FORMS = "none, fgsm:eps=E, pgd:eps=E,steps=S, blur:sigma=S"


@dataclass(frozen=True)
class Perturbation:
    """One perturbation: its kind, ε (L∞ budget in [0, 1]), PGD steps, blur σ (pixels)."""

    kind: str
    eps: float = 0.0
    steps: int = 0
    sigma: float = 0.0

    @property
    def needs_gradients(self) -> bool:
        """Whether it is crafted on a model (FGSM, PGD), so the threat model matters."""
        return self.kind in ("fgsm", "pgd")

    def __str__(self) -> str:
        fields = {"eps": self.eps, "steps": self.steps, "sigma": self.sigma}
        parts = [f"{key}={fields[key]:.10g}" for key in PERTURBATIONS[self.kind]]
        return self.kind + (":" + ",".join(parts) if parts else "")


def parse_perturbation(text: str) -> Perturbation:
    """Parse ``KIND[:key=value,...]``; a bad kind, key, value or range raises UserInputError."""
    kind, _, rest = text.strip().partition(":")
    if kind not in PERTURBATIONS:
        raise UserInputError(f"unknown perturbation {kind!r}; valid: {_FORMS}")
    fields = PERTURBATIONS[kind]
    values: dict[str, float | int] = dict(_DEFAULTS.get(kind, {}))
    for item in filter(None, rest.split(",")):
        key, sep, raw = item.partition("=")
        if key not in fields or not sep:
            valid = ", ".join(f"{k}=" for k in fields) or "no parameters"
            raise UserInputError(f"{kind}: bad parameter {item!r}; valid: {valid} ({_FORMS})")
        try:
            values[key] = _fraction(raw) if fields[key] is float else fields[key](raw)
        except (ValueError, ZeroDivisionError):
            raise UserInputError(
                f"{kind}: {key}={raw!r} is not a {fields[key].__name__}; ({_FORMS})"
            ) from None
    missing = sorted(set(fields) - set(values))
    if missing:
        raise UserInputError(f"{kind} needs {', '.join(missing)}; valid: {_FORMS}")
    perturbation = Perturbation(kind, **values)
    if fields.get("eps") and not 0.0 <= perturbation.eps <= 1.0:
        raise UserInputError(
            f"eps={perturbation.eps:g} out of range; valid: 0 <= eps <= 1 (pixel scale, "
            "4/255 = 0.0157)"
        )
    if kind == "pgd" and perturbation.steps < 1:
        raise UserInputError(f"pgd steps={perturbation.steps} out of range; valid: steps >= 1")
    if kind == "blur" and perturbation.sigma <= 0:
        raise UserInputError(f"blur sigma={perturbation.sigma:g} out of range; valid: sigma > 0")
    return perturbation


def _fraction(raw: str) -> float:
    """A real number, or ``a/b`` of two (``4/255``)."""
    top, slash, bottom = raw.partition("/")
    return float(top) / float(bottom) if slash else float(raw)
