"""One record to publish: what every pipeline step hands the worker to send."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Output:
    """One record to publish."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Mapping[str, bytes] | None = None
    #: None: the partitioner picks it from the key
    partition: int | None = None

    @property
    def size(self) -> int:
        headers = sum(len(k) + len(v) for k, v in (self.headers or {}).items())
        return len(self.key or b"") + len(self.value) + headers


__all__ = ["Output"]
