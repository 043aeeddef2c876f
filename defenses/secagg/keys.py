"""X25519 key pairs, key agreement to 32-byte seeds (HKDF-SHA256), and AES-GCM between pairs.

Each client holds two pairs: the c pair, whose agreed keys encrypt Shamir shares between
clients, and the s pair, whose agreed seeds expand into the pairwise masks.
"""

from __future__ import annotations

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from defenses.secagg.errors import ProtocolAbortError
from defenses.secagg.randomness import random_bytes

KEY_BYTES = 32
ENCRYPTION_KEY = b"fedleak secagg: share encryption key"
MASK_SEED = b"fedleak secagg: pairwise mask seed"


def generate_private_key(rng: np.random.Generator | None = None) -> X25519PrivateKey:
    """Draw an X25519 private key; ``rng`` None draws from the OS."""
    return X25519PrivateKey.from_private_bytes(random_bytes(rng, KEY_BYTES))


def public_bytes(private_key: X25519PrivateKey) -> bytes:
    """The raw 32-byte public key of a private key."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def private_bytes(private_key: X25519PrivateKey) -> bytes:
    """The raw 32-byte private key, the secret that Shamir shares."""
    return private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def load_private_key(data: bytes) -> X25519PrivateKey:
    """A private key from its raw 32 bytes (as recovered from shares)."""
    return X25519PrivateKey.from_private_bytes(data)


def agree(private_key: X25519PrivateKey, peer_public: bytes, purpose: bytes) -> bytes:
    """The 32-byte key both parties derive: HKDF-SHA256 of the X25519 secret, info=purpose.

    ``purpose`` is ENCRYPTION_KEY or MASK_SEED, so one key pair never yields the same
    bytes for two uses.
    """
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as error:
        raise ProtocolAbortError(
            f"peer public key {peer_public.hex()[:16]}… is not a usable X25519 key ({error})"
        ) from error
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(shared)


def _nonce_and_route(sender: int, recipient: int) -> tuple[bytes, bytes]:
    # A pair's key encrypts one message each way, so the sender's id is a unique nonce; the
    # route in the associated data stops the server passing a ciphertext to someone else.
    route = sender.to_bytes(8, "big") + recipient.to_bytes(8, "big")
    return sender.to_bytes(12, "big"), route


def encrypt(key: bytes, plaintext: bytes, sender: int, recipient: int) -> bytes:
    """AES-256-GCM encrypt a message from ``sender`` to ``recipient`` under their agreed key."""
    nonce, route = _nonce_and_route(sender, recipient)
    return AESGCM(key).encrypt(nonce, plaintext, route)


def decrypt(key: bytes, ciphertext: bytes, sender: int, recipient: int) -> bytes:
    """Decrypt and authenticate a message from ``sender`` to ``recipient``; abort if forged."""
    nonce, route = _nonce_and_route(sender, recipient)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, route)
    except InvalidTag as error:
        raise ProtocolAbortError(
            f"the ciphertext from client {sender} to client {recipient} failed authentication; "
            "valid: one encrypted by the sender under the pair's key"
        ) from error
