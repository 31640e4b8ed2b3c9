"""What made a restorer's outputs, as its results name it: a checkpoint file or a method without training."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from util.checkpoint import describe_position


@dataclass(frozen=True)
class LoadedCheckpoint:
    """Which checkpoint a network came from: its file, options, position and a short hash."""

    path: Path
    options: dict[str, Any]
    position: dict[str, int]
    digest: str
    kind = "checkpoint"  # how the results page and metrics.txt introduce describe()

    def describe(self) -> str:
        return f"{self.path} ({describe_position(self.position)}, sha256 {self.digest})"


@dataclass(frozen=True)
class MethodSource:
    """A method without training: its name and its one-line description (name and parameters).
    It has no file, so `digest` (the metrics' checkpoint_sha256 column) is empty."""

    name: str
    description: str
    digest: str = ""
    kind = "method"

    @property
    def path(self) -> str:
        return self.name

    def describe(self) -> str:
        return self.description
