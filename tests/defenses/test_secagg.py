"""Secure Aggregation: the masked sum decodes to the plain sum, single inputs look uniform."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import chisquare

from defenses.secagg import FixedPoint, ProtocolAbortError, SecAggClient, SecAggServer, secure_sum
from defenses.secagg.fixed_point import decode_sum, encode
from defenses.secagg.shamir import combine, split
from fedsim.errors import UserInputError

N_CLIENTS, LENGTH, THRESHOLD = 5, 10_000, 3
TOLERANCE = N_CLIENTS / FixedPoint().scale


@pytest.fixture(scope="module")
def updates() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(scale=2.0, size=LENGTH).astype(np.float32) for _ in range(N_CLIENTS)]


def test_secure_sum_equals_the_plain_sum(updates: list[np.ndarray]) -> None:
    total = secure_sum(updates, THRESHOLD, seed=1)

    plain = np.sum(np.asarray(updates, dtype=np.float64), axis=0)
    assert total.shape == (LENGTH,)
    assert np.abs(total - plain).max() <= TOLERANCE


def test_secure_sum_recovers_from_a_dropped_client(updates: list[np.ndarray]) -> None:
    total = secure_sum(updates, THRESHOLD, drop={2}, seed=2)

    plain = np.sum(np.asarray(updates, dtype=np.float64)[[0, 1, 3, 4]], axis=0)
    assert np.abs(total - plain).max() <= TOLERANCE


def test_secure_sum_without_a_seed_draws_from_the_os(updates: list[np.ndarray]) -> None:
    total = secure_sum(updates[:3], threshold=2, drop={0})

    plain = np.sum(np.asarray(updates[1:3], dtype=np.float64), axis=0)
    assert np.abs(total - plain).max() <= TOLERANCE


def _masked_inputs(updates: list[np.ndarray], seed: int) -> list[np.ndarray]:
    server = SecAggServer(range(len(updates)), 2, LENGTH)
    clients = [SecAggClient(i, 2, np.random.default_rng([seed, i])) for i in range(len(updates))]
    public_keys = server.collect_public_keys({c.client_id: c.advertise_keys() for c in clients})
    routed = server.route_shares({c.client_id: c.share_keys(public_keys) for c in clients})
    return [c.masked_input(updates[c.client_id], routed[c.client_id]) for c in clients]


@pytest.mark.parametrize("value", [0.0, 1.5])
def test_a_masked_input_is_uniform_and_hides_the_update(value: float) -> None:
    update = np.full(LENGTH, value, dtype=np.float32)
    params = FixedPoint()

    masked = _masked_inputs([update] * 3, seed=3)[0]

    top_bits = masked >> np.uint64(params.bits - 6)
    counts = np.bincount(top_bits.astype(np.int64), minlength=64)
    assert masked.dtype == np.uint64 and masked.max() < params.modulus
    assert chisquare(counts).pvalue > 0.001
    assert np.mean(masked == encode(update, params)) < 0.001


def test_fixed_point_round_trip_within_tolerance() -> None:
    params = FixedPoint()
    values = np.random.default_rng(4).uniform(-params.clip, params.clip, size=(7, 1_000))

    total = params.wrap(sum(encode(row, params) for row in values))

    assert np.abs(decode_sum(total, 7, params) - values.sum(axis=0)).max() <= 7 / (2 * params.scale)


def test_shamir_any_threshold_shares_recover_and_fewer_fail() -> None:
    secret = bytes(range(32))
    shares = split(secret, n_shares=5, threshold=3, rng=np.random.default_rng(5))

    for subset in itertools.combinations(shares, 3):
        assert combine(list(subset)) == secret
    for subset in itertools.combinations(shares, 2):
        with pytest.raises(UserInputError, match="at least 3 shares"):
            combine(list(subset))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda u: secure_sum(u, threshold=2), UserInputError, r"threshold=2 .* valid: 3\.\.5"),
        (lambda u: secure_sum(u, 3, drop={0, 1, 2}), UserInputError, r"leaves 2 .* at most 2"),
        (lambda u: secure_sum(u, 3, drop={9}), UserInputError, r"drop=\[9\] .* 0\.\.4"),
        (lambda u: SecAggServer(range(5), 6, 10), UserInputError, r"threshold=6 .* 3\.\.5"),
        (
            lambda u: FixedPoint().check_capacity(5_000),
            UserInputError,
            r"at most 1023 clients, not 5000",
        ),
    ],
)
def test_bad_parameters_name_the_value_and_the_valid_range(call, error, message, updates) -> None:
    with pytest.raises(error, match=message):
        call(updates)


def _clients_after_masking() -> tuple[list[SecAggClient], SecAggServer]:
    server = SecAggServer(range(N_CLIENTS), THRESHOLD, vector_length=4)
    clients = [SecAggClient(i, THRESHOLD, np.random.default_rng([6, i])) for i in range(N_CLIENTS)]
    public_keys = server.collect_public_keys({c.client_id: c.advertise_keys() for c in clients})
    routed = server.route_shares({c.client_id: c.share_keys(public_keys) for c in clients})
    server.collect_masked_inputs(
        {c.client_id: c.masked_input(np.ones(4, np.float32), routed[c.client_id]) for c in clients}
    )
    return clients, server


def test_a_client_refuses_to_unmask_a_client_listed_as_survivor_and_dropped() -> None:
    clients, _ = _clients_after_masking()

    with pytest.raises(ProtocolAbortError, match=r"clients \[3\] are listed both"):
        clients[0].unmask(survivors=[0, 1, 2, 3], dropped=[3, 4])


def test_the_server_aborts_with_fewer_unmask_replies_than_the_threshold() -> None:
    clients, server = _clients_after_masking()
    survivors, dropped = list(range(5)), []

    replies = {c.client_id: c.unmask(survivors, dropped) for c in clients[:2]}

    with pytest.raises(ProtocolAbortError, match=r"only 2 clients .* threshold=3 needs at least 3"):
        server.unmask(replies)


def test_a_forged_share_ciphertext_fails_authentication() -> None:
    clients = [SecAggClient(i, 2, np.random.default_rng([7, i])) for i in range(3)]
    public_keys = {c.client_id: c.advertise_keys() for c in clients}
    ciphertext = clients[1].share_keys(public_keys)[0]
    clients[0].share_keys(public_keys)

    with pytest.raises(ProtocolAbortError, match="from client 1 to client 0 failed"):
        clients[0].masked_input(np.zeros(4, np.float32), {1: ciphertext[:-1] + b"\0"})
