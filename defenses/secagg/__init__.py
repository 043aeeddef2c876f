"""Secure Aggregation (Bonawitz et al. 2017) with dropout recovery, in pure Python."""

from defenses.secagg.errors import ProtocolAbortError
from defenses.secagg.fixed_point import FixedPoint
from defenses.secagg.protocol import SecAggClient, SecAggServer, secure_sum

__all__ = ["FixedPoint", "ProtocolAbortError", "SecAggClient", "SecAggServer", "secure_sum"]
