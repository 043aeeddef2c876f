"""The error a Secure Aggregation party raises when the protocol must abort."""

from __future__ import annotations

from fedsim.errors import FedleakError


class ProtocolAbortError(FedleakError):
    """A party saw a message that breaks the protocol (too few parties, a forged or
    inconsistent message); continuing could leak a client's input, so it stops."""
