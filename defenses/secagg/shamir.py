"""t-of-n Shamir secret sharing of a 32-byte secret over the prime field of 2**521 − 1.

Share k belongs to client id k and is the secret polynomial evaluated at x = k + 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from defenses.secagg.randomness import random_bytes
from fedsim.errors import UserInputError

PRIME = (1 << 521) - 1  # a Mersenne prime, larger than any 32-byte secret
SECRET_BYTES = 32
_INT_BYTES = 4
_VALUE_BYTES = (PRIME.bit_length() + 7) // 8
SHARE_BYTES = 2 * _INT_BYTES + _VALUE_BYTES


@dataclass(frozen=True)
class Share:
    """One point (x, y) of the polynomial, with the threshold needed to combine shares."""

    x: int
    y: int
    threshold: int

    def to_bytes(self) -> bytes:
        """Serialise as x (4 bytes), threshold (4 bytes), y (66 bytes), big-endian."""
        return (
            self.x.to_bytes(_INT_BYTES, "big")
            + self.threshold.to_bytes(_INT_BYTES, "big")
            + self.y.to_bytes(_VALUE_BYTES, "big")
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Share:
        """Read a share written by ``to_bytes``."""
        if len(data) != SHARE_BYTES:
            raise UserInputError(f"a serialised share is {SHARE_BYTES} bytes, not {len(data)}")
        x = int.from_bytes(data[:_INT_BYTES], "big")
        threshold = int.from_bytes(data[_INT_BYTES : 2 * _INT_BYTES], "big")
        return cls(x, int.from_bytes(data[2 * _INT_BYTES :], "big"), threshold)


def _random_field_element(rng: np.random.Generator | None) -> int:
    while True:  # rejection sampling keeps the coefficient uniform; a retry has odds 2**-521
        value = int.from_bytes(random_bytes(rng, _VALUE_BYTES), "big") >> (
            8 * _VALUE_BYTES - PRIME.bit_length()
        )
        if value < PRIME:
            return value


def split(
    secret: bytes, n_shares: int, threshold: int, rng: np.random.Generator | None = None
) -> list[Share]:
    """Split a 32-byte secret into ``n_shares`` shares, any ``threshold`` of which recover it.

    ``shares[k]`` is for client id k (x = k + 1); ``rng`` None draws from the OS.
    """
    if len(secret) != SECRET_BYTES:
        raise UserInputError(f"a Shamir secret must be {SECRET_BYTES} bytes, not {len(secret)}")
    if not 1 <= threshold <= n_shares:
        raise UserInputError(
            f"Shamir threshold={threshold} is invalid for {n_shares} shares; valid: 1..{n_shares}"
        )
    coefficients = [int.from_bytes(secret, "big")]
    coefficients += [_random_field_element(rng) for _ in range(threshold - 1)]
    shares = []
    for x in range(1, n_shares + 1):
        y = 0
        for coefficient in reversed(coefficients):
            y = (y * x + coefficient) % PRIME
        shares.append(Share(x, y, threshold))
    return shares


def combine(shares: list[Share]) -> bytes:
    """Recover the 32-byte secret from at least ``threshold`` shares of distinct x."""
    if not shares:
        raise UserInputError("combine needs shares; got none")
    threshold = shares[0].threshold
    if any(share.threshold != threshold for share in shares):
        raise UserInputError(
            f"shares disagree on the threshold ({sorted({s.threshold for s in shares})}); "
            "valid: shares of one secret"
        )
    points = {share.x: share.y for share in shares}
    if len(points) != len(shares):
        raise UserInputError("shares repeat an x-coordinate; valid: one share per client")
    if len(points) < threshold:
        raise UserInputError(
            f"{len(points)} shares cannot recover a secret of threshold {threshold}; "
            f"valid: at least {threshold} shares"
        )
    secret = 0
    for x_k, y_k in points.items():  # Lagrange interpolation at x = 0
        numerator, denominator = 1, 1
        for x_m in points:
            if x_m != x_k:
                numerator = numerator * x_m % PRIME
                denominator = denominator * (x_m - x_k) % PRIME
        secret = (secret + y_k * numerator * pow(denominator, -1, PRIME)) % PRIME
    if secret >= 1 << (8 * SECRET_BYTES):
        raise UserInputError("the shares do not combine to a 32-byte secret; are they corrupt?")
    return secret.to_bytes(SECRET_BYTES, "big")
