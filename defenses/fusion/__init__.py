"""Contextual fusion as a defense: train the two trunks and the heads (with the α regulariser)."""
