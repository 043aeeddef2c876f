"""Evasion: perturb test images to change a trained classifier's answer (FGSM, PGD via foolbox)
or blur them (torchvision); pixels in [0, 1] in and out."""

from attacks.evasion.perturbations import perturb
from attacks.evasion.spec import PERTURBATIONS, Perturbation, parse_perturbation

__all__ = ["PERTURBATIONS", "Perturbation", "parse_perturbation", "perturb"]
