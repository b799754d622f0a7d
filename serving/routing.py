"""Which model answers: sticky per series id for the length of a canary step."""

from __future__ import annotations

import hashlib


def bucket(series_id: str, salt: str) -> float:
    """A stable number in [0, 1) for a series; the same series always lands in the same bucket
    for a given canary version, so raising the share only adds series to the canary."""
    h = hashlib.blake2b(f"{salt}\x00{series_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


def goes_to_canary(series_id: str, canary_version: str | None, share: float) -> bool:
    return canary_version is not None and share > 0.0 and bucket(series_id, canary_version) < share
