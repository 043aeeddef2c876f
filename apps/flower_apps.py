"""The ServerApp and ClientApp ``flwr run .`` loads: fedsim's apps with the run's defenses.

``pyproject.toml``'s ``[tool.flwr.app.components]`` points here; settings come from the run
config (``defenses`` joins ``name:k=v`` specs with ``;``).
"""

from __future__ import annotations

from defenses.flower_run import defend_run
from fedsim.flower.client_app import build_client_app
from fedsim.flower.server_app import build_server_app

serverapp = build_server_app(defend=defend_run)
clientapp = build_client_app(defend=defend_run)
