"""Secure Aggregation (Bonawitz et al. 2017): the server learns the survivors' sum, not an update.

Each round is a method; the parties exchange bytes, ints and lists of them (what Flower
ConfigRecords hold) and uint64 vectors:

0. ``client.advertise_keys()`` → ``server.collect_public_keys()`` → broadcast to the clients;
1. ``client.share_keys(keys)`` → ``server.route_shares()`` → to each recipient;
2. ``client.masked_input(update, ciphertexts)`` → ``server.collect_masked_inputs()`` →
   (survivors, dropped) to the survivors;
3. ``client.unmask(survivors, dropped)`` → ``server.unmask(replies)`` → the float sum.

Client i sends y_i = x_i + PRG(b_i) + Σ_{j>i} PRG(s_ij) − Σ_{j<i} PRG(s_ij) mod 2**bits: the
pairwise masks cancel in the sum; the server removes the self masks b_i of the survivors
and, for each dropped client, rebuilds its pairwise masks from its recovered s key. A client
refuses to reveal both secrets of any one client, which would unmask its update.

This is the paper's protocol against an honest-but-curious server, plus that refusal. Its
active-security additions (signed keys, the consistency-check round) are not implemented.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from defenses.secagg.errors import ProtocolAbortError
from defenses.secagg.fixed_point import DEFAULT_FIXED_POINT, FixedPoint, decode_sum, encode
from defenses.secagg.keys import (
    ENCRYPTION_KEY,
    MASK_SEED,
    agree,
    decrypt,
    encrypt,
    generate_private_key,
    load_private_key,
    private_bytes,
    public_bytes,
)
from defenses.secagg.prg import SEED_BYTES, expand
from defenses.secagg.randomness import random_bytes
from defenses.secagg.shamir import SHARE_BYTES, Share, combine, split
from fedsim.errors import UserInputError

PublicKeys = dict[int, tuple[bytes, bytes]]  # client id → (c public key, s public key)


class SecAggClient:
    """One client's side of the protocol; call its rounds in order, once each.

    ``rng`` None draws every secret from the OS; a seeded generator makes a run
    reproducible and is for tests and benchmarks only.
    """

    def __init__(
        self,
        client_id: int,
        threshold: int,
        rng: np.random.Generator | None = None,
        fixed_point: FixedPoint = DEFAULT_FIXED_POINT,
    ) -> None:
        if client_id < 0:
            raise UserInputError(f"client_id={client_id} is invalid; valid: ≥ 0")
        if threshold < 1:
            raise UserInputError(f"threshold={threshold} is invalid; valid: ≥ 1")
        self.client_id = client_id
        self.threshold = threshold
        self.fixed_point = fixed_point
        self._rng = rng
        self._c_key = generate_private_key(rng)
        self._s_key = generate_private_key(rng)
        self._public_keys: PublicKeys = {}
        self._self_mask_seed = b""
        # client j → (my share of j's self-mask seed b_j, my share of j's s private key)
        self._shares_held: dict[int, tuple[Share, Share]] = {}
        self._sent_input = False

    def advertise_keys(self) -> tuple[bytes, bytes]:
        """Round 0: return the public keys (c for encrypting shares, s for masks), 32 bytes each."""
        return public_bytes(self._c_key), public_bytes(self._s_key)

    def share_keys(self, public_keys: PublicKeys) -> dict[int, bytes]:
        """Round 1: draw the self-mask seed b_i; return, for every other client j, the AES-GCM
        ciphertext of j's Shamir shares of b_i and of this client's s private key."""
        i, t = self.client_id, self.threshold
        if public_keys.get(i) != self.advertise_keys():
            raise ProtocolAbortError(f"the broadcast keys omit or alter client {i}'s own keys")
        if len(public_keys) < t:
            raise ProtocolAbortError(
                f"only {len(public_keys)} clients advertised keys; threshold={t} needs at least {t}"
            )
        if min(public_keys) < 0:
            raise ProtocolAbortError(f"client ids {sorted(public_keys)} are invalid; valid: ≥ 0")
        all_keys = [key for pair in public_keys.values() for key in pair]
        if len(set(all_keys)) != len(all_keys):
            raise ProtocolAbortError("the broadcast repeats a public key; valid: all distinct")
        self._public_keys = dict(public_keys)
        self._self_mask_seed = random_bytes(self._rng, SEED_BYTES)
        n_shares = max(public_keys) + 1
        seed_shares = split(self._self_mask_seed, n_shares, t, self._rng)
        key_shares = split(private_bytes(self._s_key), n_shares, t, self._rng)
        self._shares_held = {i: (seed_shares[i], key_shares[i])}
        return {
            j: encrypt(
                agree(self._c_key, c_public, ENCRYPTION_KEY),
                seed_shares[j].to_bytes() + key_shares[j].to_bytes(),
                sender=i,
                recipient=j,
            )
            for j, (c_public, _) in public_keys.items()
            if j != i
        }

    def masked_input(self, update: np.ndarray, ciphertexts_for_me: dict[int, bytes]) -> np.ndarray:
        """Round 2: return encode(update) + PRG(b_i) + Σ_{j>i} PRG(s_ij) − Σ_{j<i} PRG(s_ij)
        mod 2**bits as uint64, j over the clients whose shares reached this client."""
        i, t = self.client_id, self.threshold
        if not self._public_keys or self._sent_input:
            raise ProtocolAbortError(f"client {i}: masked_input comes once, after share_keys")
        unknown = set(ciphertexts_for_me) - (set(self._public_keys) - {i})
        if unknown:
            raise ProtocolAbortError(
                f"client {i} got shares from clients {sorted(unknown)}; valid: the other "
                f"clients that advertised keys, {sorted(set(self._public_keys) - {i})}"
            )
        if len(ciphertexts_for_me) + 1 < t:
            raise ProtocolAbortError(
                f"client {i} got shares from {len(ciphertexts_for_me)} clients; "
                f"threshold={t} needs at least {t - 1} others"
            )
        for j, ciphertext in ciphertexts_for_me.items():
            key = agree(self._c_key, self._public_keys[j][0], ENCRYPTION_KEY)
            self._shares_held[j] = self._read_shares(decrypt(key, ciphertext, j, i), sender=j)

        encoded = encode(update, self.fixed_point)
        length, bits = len(encoded), self.fixed_point.bits
        masked = encoded + expand(self._self_mask_seed, length, bits)
        for j in ciphertexts_for_me:  # uint64 wraps mod 2**64, a multiple of 2**bits
            seed = agree(self._s_key, self._public_keys[j][1], MASK_SEED)
            pairwise = expand(seed, length, bits)
            masked = masked + pairwise if j > i else masked - pairwise
        self._sent_input = True
        return self.fixed_point.wrap(masked)

    def unmask(self, survivors: list[int], dropped: list[int]) -> dict[int, bytes]:
        """Round 3: return the shares this client holds: of b_j for each survivor j, of the
        s private key of each dropped j. Refuses if a client is in both lists."""
        i, t = self.client_id, self.threshold
        both = set(survivors) & set(dropped)
        if both:
            raise ProtocolAbortError(
                f"clients {sorted(both)} are listed both as survivors and as dropped; valid: each "
                "client in one list only (both shares of a client would unmask its update)"
            )
        if not self._sent_input:
            raise ProtocolAbortError(f"client {i}: unmask comes after masked_input")
        if i not in survivors:
            raise ProtocolAbortError(
                f"client {i} sent its masked input but survivors={sorted(survivors)} omit it; "
                "valid: survivors that include it"
            )
        listed, held = set(survivors) | set(dropped), set(self._shares_held)
        if listed != held:
            raise ProtocolAbortError(
                f"the lists name clients {sorted(listed)}; valid: each client that shared keys "
                f"with client {i}, {sorted(held)}, in exactly one list"
            )
        if len(set(survivors)) < t:
            raise ProtocolAbortError(
                f"only {len(set(survivors))} survivors; threshold={t} needs at least {t}"
            )
        seed_shares = {j: self._shares_held[j][0].to_bytes() for j in survivors}
        key_shares = {j: self._shares_held[j][1].to_bytes() for j in dropped}
        return seed_shares | key_shares

    def to_state(self) -> dict[str, int | float | bytes | list[int] | list[bytes]]:
        """The client's secrets and progress as ints, bytes and lists of them (what a Flower
        ConfigRecord holds), for a client that handles each round in a fresh process."""
        held = sorted(self._shares_held)
        return {
            "client_id": self.client_id,
            "threshold": self.threshold,
            "bits": self.fixed_point.bits,
            "scale_bits": self.fixed_point.scale_bits,
            "clip": self.fixed_point.clip,
            "c_key": private_bytes(self._c_key),
            "s_key": private_bytes(self._s_key),
            "key_ids": sorted(self._public_keys),
            "c_public": [self._public_keys[j][0] for j in sorted(self._public_keys)],
            "s_public": [self._public_keys[j][1] for j in sorted(self._public_keys)],
            "self_mask_seed": self._self_mask_seed,
            "held_ids": held,
            "held_shares": [
                self._shares_held[j][0].to_bytes() + self._shares_held[j][1].to_bytes()
                for j in held
            ],
            "sent_input": int(self._sent_input),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> SecAggClient:
        """The client :meth:`to_state` saved, ready for its next round (secrets from the OS)."""
        fixed_point = FixedPoint(int(state["bits"]), int(state["scale_bits"]), float(state["clip"]))
        client = cls(int(state["client_id"]), int(state["threshold"]), None, fixed_point)
        client._c_key = load_private_key(state["c_key"])
        client._s_key = load_private_key(state["s_key"])
        client._public_keys = {
            int(j): (c, s)
            for j, c, s in zip(state["key_ids"], state["c_public"], state["s_public"], strict=True)
        }
        client._self_mask_seed = bytes(state["self_mask_seed"])
        client._shares_held = {
            int(j): (
                Share.from_bytes(payload[:SHARE_BYTES]),
                Share.from_bytes(payload[SHARE_BYTES:]),
            )
            for j, payload in zip(state["held_ids"], state["held_shares"], strict=True)
        }
        client._sent_input = bool(state["sent_input"])
        return client

    def _read_shares(self, payload: bytes, sender: int) -> tuple[Share, Share]:
        if len(payload) == 2 * SHARE_BYTES:
            seed_share = Share.from_bytes(payload[:SHARE_BYTES])
            key_share = Share.from_bytes(payload[SHARE_BYTES:])
            shares = (seed_share, key_share)
            if all(s.x == self.client_id + 1 and s.threshold == self.threshold for s in shares):
                return shares
        raise ProtocolAbortError(
            f"client {sender} sent client {self.client_id} malformed shares; valid: two shares "
            f"at x={self.client_id + 1} with threshold={self.threshold}"
        )


class SecAggServer:
    """The server's side: routes messages and, from ≥ threshold survivors, unmasks the sum.

    ``client_ids`` must be 0..n−1 (the Shamir x-coordinates minus one). The threshold must be
    more than half the clients (≥ n // 2 + 1), the paper's condition against a malicious
    server that tells two halves of the survivors different dropout lists to learn both the
    self-mask and the mask key of one client; with colluding clients the paper needs more
    (t > 2n/3 against up to n/3 of them).
    """

    def __init__(
        self,
        client_ids: Sequence[int],
        threshold: int,
        vector_length: int,
        fixed_point: FixedPoint = DEFAULT_FIXED_POINT,
    ) -> None:
        ids = list(client_ids)
        n = len(ids)
        if n == 0 or sorted(ids) != list(range(n)):
            raise UserInputError(
                f"client_ids={ids} are invalid; valid: 0..n-1, each once, for n ≥ 1 clients"
            )
        minimum = n // 2 + 1
        if not minimum <= threshold <= n:
            raise UserInputError(
                f"threshold={threshold} is invalid for {n} clients; valid: {minimum}..{n} "
                "(more than half the clients, so a malicious server cannot split the survivors)"
            )
        if vector_length < 1:
            raise UserInputError(f"vector_length={vector_length} is invalid; valid: ≥ 1")
        fixed_point.check_capacity(n)
        self.client_ids = sorted(ids)
        self.threshold = threshold
        self.vector_length = vector_length
        self.fixed_point = fixed_point
        self._public_keys: PublicKeys = {}
        self._participants: set[int] = set()  # clients whose shares were routed
        self._masked: dict[int, np.ndarray] = {}

    def collect_public_keys(self, advertised: PublicKeys) -> PublicKeys:
        """Round 0: keep the keys of the clients that advertised; return them to broadcast."""
        self._check_senders(advertised, set(self.client_ids), "advertised keys")
        self._public_keys = dict(advertised)
        return dict(advertised)

    def route_shares(self, from_each: dict[int, dict[int, bytes]]) -> dict[int, dict[int, bytes]]:
        """Round 1: regroup the encrypted shares by recipient: {recipient: {sender: ciphertext}}."""
        self._check_senders(from_each, set(self._public_keys), "sent encrypted shares")
        for sender, ciphertexts in from_each.items():
            expected = set(self._public_keys) - {sender}
            if set(ciphertexts) != expected:
                raise ProtocolAbortError(
                    f"client {sender} sent shares to {sorted(ciphertexts)}; valid: every other "
                    f"client that advertised keys, {sorted(expected)}"
                )
        self._participants = set(from_each)
        return {
            recipient: {j: sent[recipient] for j, sent in from_each.items() if j != recipient}
            for recipient in from_each
        }

    def collect_masked_inputs(self, masked: dict[int, np.ndarray]) -> tuple[list[int], list[int]]:
        """Round 2: keep the masked vectors; return (survivors, dropped) to send to survivors."""
        self._check_senders(masked, self._participants, "sent masked inputs")
        for j, vector in masked.items():
            if vector.dtype != np.uint64 or vector.shape != (self.vector_length,):
                raise ProtocolAbortError(
                    f"client {j} sent a {vector.dtype} vector of shape {vector.shape}; "
                    f"valid: uint64 of shape ({self.vector_length},)"
                )
        self._masked = dict(masked)
        return sorted(masked), sorted(self._participants - set(masked))

    def unmask(self, replies: dict[int, dict[int, bytes]]) -> np.ndarray:
        """Round 3: from ≥ threshold survivors' shares, remove the masks and return the float64
        sum of the survivors' updates (within n / (2 * scale) of the true sum)."""
        survivors = sorted(self._masked)
        dropped = sorted(self._participants - set(survivors))
        self._check_senders(replies, set(survivors), "answered the unmask round")
        bits, length = self.fixed_point.bits, self.vector_length
        total = np.zeros(length, dtype=np.uint64)
        for j in survivors:  # uint64 wraps mod 2**64, a multiple of 2**bits
            total += self._masked[j] - expand(self._recover(replies, j), length, bits)
        for k in dropped:
            s_key = load_private_key(self._recover(replies, k))
            if public_bytes(s_key) != self._public_keys[k][1]:
                raise ProtocolAbortError(f"the shares of client {k}'s s key rebuild another key")
            for j in survivors:  # survivor j added PRG(s_jk) when k > j, subtracted it when k < j
                pairwise = expand(agree(s_key, self._public_keys[j][1], MASK_SEED), length, bits)
                total = total - pairwise if k > j else total + pairwise
        return decode_sum(self.fixed_point.wrap(total), len(survivors), self.fixed_point)

    def _check_senders(self, received: Collection[int], allowed: set[int], what: str) -> None:
        unknown = set(received) - allowed
        if unknown:
            raise ProtocolAbortError(
                f"clients {sorted(unknown)} {what} out of turn; valid: {sorted(allowed)}"
            )
        if len(received) < self.threshold:
            raise ProtocolAbortError(
                f"only {len(received)} clients {what}; threshold={self.threshold} needs at least "
                f"{self.threshold}"
            )

    def _recover(self, replies: dict[int, dict[int, bytes]], owner: int) -> bytes:
        """Combine the survivors' shares of ``owner``'s secret (b if it survived, else s key)."""
        shares = []
        for replier, reply in replies.items():
            if owner not in reply:
                continue
            try:
                share = Share.from_bytes(reply[owner])
            except UserInputError as error:
                raise ProtocolAbortError(f"client {replier}'s reply: {error}") from error
            if share.x != replier + 1:
                raise ProtocolAbortError(
                    f"client {replier} replied with a share at x={share.x}; valid: x={replier + 1}"
                )
            shares.append(share)
        try:
            return combine(shares)
        except UserInputError as error:
            raise ProtocolAbortError(f"cannot recover client {owner}'s secret: {error}") from error


def secure_sum(
    updates: Sequence[np.ndarray],
    threshold: int,
    drop: Collection[int] = (),
    seed: int | None = None,
    fixed_point: FixedPoint = DEFAULT_FIXED_POINT,
) -> np.ndarray:
    """Run the whole protocol in-process; return the float64 sum of the survivors' updates.

    Client i holds ``updates[i]`` (1-D, float). Clients in ``drop`` share their keys, then
    drop out before sending a masked input. ``seed`` None draws every secret from the OS;
    an int makes the run reproducible (tests, benchmarks).
    """
    n = len(updates)
    lengths = {np.shape(update) for update in updates}
    if n == 0 or len(lengths) != 1 or len(next(iter(lengths))) != 1:
        raise UserInputError(
            f"updates of shapes {sorted(lengths)} are invalid; valid: ≥ 1 1-D vectors of one length"
        )
    server = SecAggServer(range(n), threshold, np.shape(updates[0])[0], fixed_point)
    unknown = set(drop) - set(range(n))
    if unknown:
        raise UserInputError(f"drop={sorted(unknown)} names no client; valid: ids 0..{n - 1}")
    if n - len(set(drop)) < threshold:
        raise UserInputError(
            f"drop={sorted(set(drop))} leaves {n - len(set(drop))} survivors, fewer than "
            f"threshold={threshold}; valid: drop at most {n - threshold} clients"
        )
    clients = [
        SecAggClient(
            i, threshold, None if seed is None else np.random.default_rng([seed, i]), fixed_point
        )
        for i in range(n)
    ]
    public_keys = server.collect_public_keys({c.client_id: c.advertise_keys() for c in clients})
    routed = server.route_shares({c.client_id: c.share_keys(public_keys) for c in clients})
    staying = [c for c in clients if c.client_id not in drop]
    survivors, dropped = server.collect_masked_inputs(
        {c.client_id: c.masked_input(updates[c.client_id], routed[c.client_id]) for c in staying}
    )
    return server.unmask({c.client_id: c.unmask(survivors, dropped) for c in staying})
