"""Secure aggregation over Flower messages: :mod:`defenses.secagg.protocol` on the Message API.

Why our own and not Flower's: ``SecAggPlusWorkflow`` / ``secaggplus_mod`` run only on the
legacy ``Driver`` + ``NumPyClient`` API, which the Message-API ServerApp and ClientApp here do
not use. Per training round:

1. ``query.secagg`` step ``keys``: every client draws its key pairs and advertises the public
   halves; 2. step ``shares``: with every public key, each client returns its encrypted Shamir
   shares, which the server routes; each train message carries the client's incoming shares;
3. the train reply holds only the masked update vector; 4. step ``unmask``: the survivors
   return the shares that remove the masks, and the server decodes the sum.

A client keeps its secrets in its own ``Context.state`` between the steps (a simulated client
may run each message in another process).
"""

from __future__ import annotations

import numpy as np
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid

from defenses.secagg.errors import ProtocolAbortError
from defenses.secagg.fixed_point import FixedPoint
from defenses.secagg.protocol import SecAggClient, SecAggServer
from defenses.specs import SecAgg
from fedsim.errors import UserInputError
from fedsim.flower.records import SECURE_AGGREGATION_ACTION

RECORD_KEY = "secagg"
MESSAGE_TYPE = f"query.{SECURE_AGGREGATION_ACTION}"
FIXED_POINT = FixedPoint(bits=62, scale_bits=32, clip=256.0)
"""Model updates: 2**-32 resolution, entries clipped to ±256, sums of up to 2**21 clients."""


class ClientDroppedOut(Exception):
    """Raised by a client told to drop out (``secagg:drop=``), after it shared its keys."""


class FlowerSecAgg:
    """The :class:`fedsim.flower.defense_hooks.SecureAggregation` of a run of ``clients``."""

    def __init__(self, params: SecAgg, clients: int) -> None:
        majority = clients // 2 + 1
        self.threshold = params.threshold or majority
        if not majority <= self.threshold <= clients:
            raise UserInputError(
                f"secagg threshold={params.threshold} is invalid for {clients} clients; "
                f"valid: {majority}..{clients} (more than half)"
            )
        if clients - params.drop < self.threshold:
            raise UserInputError(
                f"secagg drop={params.drop} leaves {clients - params.drop} of {clients} clients, "
                f"fewer than threshold={self.threshold}; valid: drop ≤ {clients - self.threshold}"
            )
        self.clients = clients
        self.dropping = set(range(clients - params.drop, clients))
        self._server: SecAggServer | None = None
        self._nodes: dict[int, int] = {}

    # Client side -------------------------------------------------------------------------

    def client_step(self, msg: Message, context: Context, client: int) -> RecordDict:
        """Answer the ``keys``, ``shares`` or ``unmask`` step of the protocol."""
        sent = msg.content[RECORD_KEY]
        step = str(sent["step"])
        if step == "keys":
            party = SecAggClient(client, self.threshold, fixed_point=FIXED_POINT)
            c_public, s_public = party.advertise_keys()
            reply = {"client": client, "c_public": c_public, "s_public": s_public}
        elif step == "shares":
            party = _restore(context)
            keys = {
                int(j): (c, s)
                for j, c, s in zip(sent["ids"], sent["c_public"], sent["s_public"], strict=True)
            }
            ciphertexts = party.share_keys(keys)
            reply = {
                "client": client,
                "recipients": list(ciphertexts),
                "ciphertexts": list(ciphertexts.values()),
            }
        elif step == "unmask":
            party = _restore(context)
            shares = party.unmask(list(sent["survivors"]), list(sent["dropped"]))
            reply = {"client": client, "owners": list(shares), "shares": list(shares.values())}
        else:
            raise ProtocolAbortError(f"unknown secagg step {step!r}; valid: keys, shares, unmask")
        context.state[RECORD_KEY] = ConfigRecord(party.to_state())
        return RecordDict({RECORD_KEY: ConfigRecord(reply)})

    def mask(self, vector: np.ndarray, msg: Message, context: Context, client: int) -> np.ndarray:
        """The client's masked update; a client told to drop out raises instead."""
        if client in self.dropping:
            raise ClientDroppedOut(f"client {client} drops out after sharing keys (secagg:drop)")
        party = _restore(context)
        sent = msg.content[RECORD_KEY]
        incoming = _by_id(sent["senders"], sent["ciphertexts"])
        masked = party.masked_input(vector, incoming)
        context.state[RECORD_KEY] = ConfigRecord(party.to_state())
        return masked

    # Server side -------------------------------------------------------------------------

    def setup(
        self, grid: Grid, server_round: int, node_ids: list[int], vector_length: int
    ) -> dict[int, RecordDict]:
        """Run the key and share steps; return each node's incoming shares for its train message."""
        replies = _ask(grid, {node: {"step": "keys"} for node in node_ids})
        self._nodes = {int(reply["client"]): node for node, reply in replies.items()}
        self._server = SecAggServer(sorted(self._nodes), self.threshold, vector_length, FIXED_POINT)
        keys = self._server.collect_public_keys(
            {
                int(r["client"]): (bytes(r["c_public"]), bytes(r["s_public"]))
                for r in replies.values()
            }
        )
        ids = sorted(keys)
        broadcast = {
            "step": "shares",
            "ids": ids,
            "c_public": [keys[j][0] for j in ids],
            "s_public": [keys[j][1] for j in ids],
        }
        replies = _ask(grid, {node: broadcast for node in node_ids})
        routed = self._server.route_shares(
            {
                int(r["client"]): dict(
                    zip(map(int, r["recipients"]), r["ciphertexts"], strict=True)
                )
                for r in replies.values()
            }
        )
        return {
            self._nodes[client]: RecordDict(
                {
                    RECORD_KEY: ConfigRecord(
                        {"senders": list(incoming), "ciphertexts": list(incoming.values())}
                    )
                }
            )
            for client, incoming in routed.items()
        }

    def unmask(
        self, grid: Grid, server_round: int, masked: dict[int, np.ndarray]
    ) -> tuple[np.ndarray, list[int]]:
        """Tell the survivors who dropped out, collect their shares, decode the sum."""
        if self._server is None:
            raise ProtocolAbortError("secagg: unmask before the key and share steps of this round")
        survivors, dropped = self._server.collect_masked_inputs(masked)
        request = {"step": "unmask", "survivors": survivors, "dropped": dropped}
        replies = _ask(grid, {self._nodes[client]: request for client in survivors})
        total = self._server.unmask(
            {int(r["client"]): _by_id(r["owners"], r["shares"]) for r in replies.values()}
        )
        self._server = None
        return total, survivors


def _by_id(ids: list[int], values: list[bytes]) -> dict[int, bytes]:
    return dict(zip(map(int, ids), values, strict=True))


def _restore(context: Context) -> SecAggClient:
    if RECORD_KEY not in context.state:
        raise ProtocolAbortError("secagg: this client got a later step before the keys step")
    return SecAggClient.from_state(context.state[RECORD_KEY])


def _ask(grid: Grid, requests: dict[int, dict]) -> dict[int, ConfigRecord]:
    """Send one ``query.secagg`` message per node; return each node's reply record."""
    messages = [
        Message(
            content=RecordDict({RECORD_KEY: ConfigRecord(request)}),
            dst_node_id=node,
            message_type=MESSAGE_TYPE,
        )
        for node, request in requests.items()
    ]
    replies = {}
    for reply in grid.send_and_receive(messages):
        if reply.has_error():
            reason = reply.error.reason.strip().splitlines()[-1]
            raise ProtocolAbortError(f"secagg: a client failed a protocol step: {reason}")
        replies[reply.metadata.src_node_id] = reply.content[RECORD_KEY]
    return replies
