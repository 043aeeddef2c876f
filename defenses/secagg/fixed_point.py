"""Fixed-point encoding of float vectors into integers modulo 2**bits, so masks can be added.

A value x is clipped to [-clip, clip], scaled by 2**scale_bits, rounded to the nearest
integer and stored modulo 2**bits in a uint64 array. The modular sum of n encodings decodes
back to the float sum as long as n * clip * 2**scale_bits < 2**(bits - 1), i.e. the signed
sum never wraps around. Rounding costs at most 1 / (2 * scale) per client, so

    |decode_sum(Σ encode(x_i)) − Σ x_i| ≤ n / (2 * scale)   (≤ n / scale)

for inputs within ±clip (clipped values are off by how far they were clipped), plus the
float64 rounding of the result, exact while |sum| * scale < 2**53.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedsim.errors import UserInputError

MAX_BITS = 62  # uint64 holds the modulus, and decoding reads values as int64


@dataclass(frozen=True)
class FixedPoint:
    """Fixed-point parameters: modulus 2**bits, scale 2**scale_bits, inputs clipped to ±clip.

    The defaults (modulus 2**32, scale 2**16, clip 32) hold the sum of up to 1023 clients.
    """

    bits: int = 32
    scale_bits: int = 16
    clip: float = 32.0

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= MAX_BITS:
            raise UserInputError(f"fixed-point bits={self.bits} is invalid; valid: 2..{MAX_BITS}")
        if self.scale_bits < 0:
            raise UserInputError(f"fixed-point scale_bits={self.scale_bits} is invalid; valid: ≥ 0")
        if not self.clip > 0:
            raise UserInputError(f"fixed-point clip={self.clip} is invalid; valid: > 0")
        self.check_capacity(1)

    @property
    def modulus(self) -> int:
        """The modulus 2**bits that encodings, masks and sums live in."""
        return 1 << self.bits

    @property
    def scale(self) -> int:
        """Integer units per 1.0: 2**scale_bits."""
        return 1 << self.scale_bits

    @property
    def max_clients(self) -> int:
        """The most clients whose clipped values sum without wrap-around."""
        return ((1 << (self.bits - 1)) - 1) // round(self.clip * self.scale)

    def check_capacity(self, n_clients: int) -> None:
        """Raise UserInputError unless the sum of ``n_clients`` encodings cannot wrap around."""
        if n_clients > self.max_clients:
            raise UserInputError(
                f"fixed point bits={self.bits}, scale=2**{self.scale_bits}, clip={self.clip} "
                f"holds the sum of at most {self.max_clients} clients, not {n_clients}; "
                "raise bits or lower scale_bits or clip"
            )

    def wrap(self, values: np.ndarray) -> np.ndarray:
        """Reduce uint64 values (after wrapping uint64 adds or subtracts) modulo 2**bits."""
        return values & np.uint64(self.modulus - 1)


DEFAULT_FIXED_POINT = FixedPoint()


def encode(update: np.ndarray, params: FixedPoint) -> np.ndarray:
    """Encode a 1-D float vector as uint64 integers modulo 2**bits (clipped to ±clip)."""
    values = np.asarray(update, dtype=np.float64)
    if values.ndim != 1:
        raise UserInputError(f"an update must be a 1-D vector, not of shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise UserInputError("an update holds NaN or infinite values; only finite values encode")
    clipped = np.clip(values, -params.clip, params.clip)
    signed = np.rint(clipped * params.scale).astype(np.int64)
    return params.wrap(signed.astype(np.uint64))


def decode_sum(total: np.ndarray, n_clients: int, params: FixedPoint) -> np.ndarray:
    """Decode the modular sum of ``n_clients`` encodings into the float64 sum of their values."""
    params.check_capacity(n_clients)
    unsigned = params.wrap(np.asarray(total, dtype=np.uint64)).astype(np.int64)
    half = 1 << (params.bits - 1)
    signed = np.where(unsigned >= half, unsigned - params.modulus, unsigned)
    return signed.astype(np.float64) / params.scale
