"""The pseudorandom generator that turns a 32-byte seed into a mask vector."""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fedsim.errors import UserInputError

SEED_BYTES = 32


def expand(seed: bytes, length: int, bits: int) -> np.ndarray:
    """Expand ``seed`` into ``length`` uint64 values uniform in [0, 2**bits), bits in 1..64.

    The AES-256-CTR keystream under the seed (zero counter block), read as little-endian
    uint64 words and masked to ``bits``: the same seed always gives the same vector.
    """
    if len(seed) != SEED_BYTES:
        raise UserInputError(f"a PRG seed must be {SEED_BYTES} bytes, not {len(seed)}")
    if not 1 <= bits <= 64:
        raise UserInputError(f"PRG bits={bits} is invalid; valid: 1..64")
    encryptor = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor()
    keystream = encryptor.update(bytes(8 * length)) + encryptor.finalize()
    words = np.frombuffer(keystream, dtype="<u8").astype(np.uint64)
    return words if bits == 64 else words & np.uint64((1 << bits) - 1)
