"""The SearchSpace interface: pure Python, no Ray and no torch at import time.

An architecture ("arch") is a JSON-serialisable dict, so it can travel through Ray configs,
MLflow params and the searchers' JSON state files unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from abc import ABC, abstractmethod
from typing import Any

Arch = dict[str, Any]


class SearchSpaceError(ValueError):
    """A search-space definition or an architecture is invalid; the message names the path."""


class SearchSpace(ABC):
    """What every searcher needs from a space: sample, mutate, encode, hash, describe."""

    name: str = "space"

    @abstractmethod
    def sample(self, rng: random.Random) -> Arch:
        """A uniformly random architecture."""

    @abstractmethod
    def mutate(self, arch: Arch, rng: random.Random) -> Arch:
        """A neighbour of `arch` that differs in one decision (never `arch` itself)."""

    @abstractmethod
    def encode(self, arch: Arch) -> list[float]:
        """A fixed-length numeric vector (same length for every arch), for predictors."""

    @abstractmethod
    def suggest(self, trial: Any) -> Arch:
        """Build an arch define-by-run from an Optuna trial (`trial.suggest_*`)."""

    @abstractmethod
    def to_params(self, arch: Arch) -> dict[str, Any]:
        """Flat scalar parameters, for MLflow params and data frames."""

    def describe(self, arch: Arch) -> str:
        """A short human-readable summary, used in run names and leaderboards."""
        return ",".join(f"{k}={v}" for k, v in self.to_params(arch).items())

    def key(self, arch: Arch) -> str:
        """Canonical hash: two archs with the same key are the same network."""
        blob = json.dumps(arch, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def validate(self, arch: Arch) -> Arch:
        """Return `arch` if it belongs to the space, else raise SearchSpaceError."""
        return arch

    def neighbours(self, arch: Arch, rng: random.Random, limit: int = 64) -> list[Arch]:
        """Distinct one-step neighbours of `arch`, in random order (at most `limit`).

        Spaces with a small exact neighbourhood override this; the default collects
        distinct mutations, which works for any space.
        """
        seen = {self.key(arch)}
        out: list[Arch] = []
        for _ in range(limit * 4):
            cand = self.mutate(arch, rng)
            k = self.key(cand)
            if k not in seen:
                seen.add(k)
                out.append(cand)
                if len(out) >= limit:
                    break
        return out

    def build_model(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> Any:
        """A `torch.nn.Module` for `arch` (torch is imported only here, lazily)."""
        raise NotImplementedError(f"search space {self.name!r} has no torch builder")

    def objectives(self, arch: Arch) -> dict[str, float]:
        """Cheap costs the space can compute without training (e.g. parameter count)."""
        return {}

    def size(self) -> float:
        """How many distinct architectures the space holds (math.inf with a continuous
        parameter): `nasorch check` prints it."""
        return math.inf
