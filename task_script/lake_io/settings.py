"""How the task talks to the data lake. Settings only: no decision depends on them."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

# botocore's default pool is 10 connections; beyond it a read opens (and drops) a connection of its own, which
# costs a handshake but works. 64 reads of 30 ms keep ~2,100 reads/s going: the engine now decides 2,000 images in
# 2 s on 2 cores, and with 32 in flight (~1,000 reads/s) the reads held it back (2,000 images: 1.54-1.72x the run
# without latency with 32, 1.40x with 64, bench/task_latency.py).
DEFAULT_READS = 64
DEFAULT_LABELS = 256  # each label is its own HTTP POST (ts-sdk opens a new connection per call); with a manifest
# that gives sha256s, no label may go out before every file is checked, so a run's labels come in a burst at its end:
# 40,000 labels at 50 ms take 62 s with 32 in flight, 16 s with 128 and 8 s with 256. Measured against a run without
# latency that now takes 42-44 s: 1.35x with 32 reads and 128 labels in flight, 1.16x with 64 and 256.


@dataclass(frozen=True)
class IoSettings:
    read_concurrency: int = DEFAULT_READS
    label_concurrency: int = DEFAULT_LABELS
    max_mb_in_flight: int = 256  # bytes read ahead of the engine and not yet handed to it
    read_attempts: int = 6  # per call, the first included
    first_delay_s: float = 0.1  # backoff: full jitter in [0, min(max_delay_s, first_delay_s * 2**retry)]
    max_delay_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("read_concurrency", "label_concurrency", "max_mb_in_flight", "read_attempts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.first_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("retry delays cannot be negative")

    @property
    def max_bytes_in_flight(self) -> int:
        return self.max_mb_in_flight * 2**20

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> IoSettings:
        """From pipeline config or task input (strings on the platform; blank means the default)."""
        chosen: dict[str, Any] = {}
        for spec in fields(cls):
            value = values.get(spec.name)
            if value is None or value == "":
                continue
            kind = float if spec.type == "float" else int
            try:
                chosen[spec.name] = kind(value)
            except ValueError as exc:
                raise ValueError(f"{spec.name}: {value!r} is not a number") from exc
        return cls(**chosen)
