"""Federated simulation: data, models, what a client sends (Observation) and hides (GroundTruth)."""
