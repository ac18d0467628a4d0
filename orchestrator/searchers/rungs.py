"""`rungs`: predictor-guided search that learns from partial evaluations (our own; with ASHA).

Under ASHA most trials stop after an epoch or a few, so a searcher told only final values learns
from a handful of full trials and a pile of truncated ones it cannot tell apart. `rungs` hears
every epoch of every trial (`observe`, through the same adapter hooks as any result) and, like
BOHB's per-budget models, fits its predictor at the deepest epoch that enough trials have
reached: early in a search that is the first rung, where ASHA has many results; later a deeper
one, whose values rank architectures the way full training does. Proposals are the `guided`
searcher's (neighbours and mutations of the best at that epoch plus random ones, never an
architecture asked before, picked by a Thompson sample of a GP on the space's `encode`).

Why: on learning curves the first epochs already separate poor from good architectures, so a
model at a shallow rung is cheap, abundant evidence; moving to deeper rungs as they fill keeps
the model from favouring fast starters that ASHA would later stop.

Nothing an ask does grows with the search: the model's epoch is kept up to date as epochs are
observed, and past `guided`'s `batch_after` architectures one fit serves several asks.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from orchestrator.searchers.base import Strategy
from orchestrator.searchers.guided import GuidedSearch
from search_spaces.base import Arch, SearchSpace


class RungGuidedSearch(Strategy):
    def __init__(
        self,
        space: SearchSpace,
        *,
        mode: str = "max",
        seed: int | None = None,
        num_init: int = 10,
        min_points: int = 10,
        top_k: int = 5,
        max_points: int = 300,
        batch_after: int | None = 250,
    ):
        super().__init__(space, mode=mode, seed=seed)
        if num_init < 1 or min_points < 2:
            raise ValueError(
                f"num_init must be >= 1 and min_points >= 2, got {num_init}, {min_points}"
            )
        self.num_init, self.min_points = num_init, min_points
        # The proposal machinery (candidate pool, GP, Thompson sampling) is `guided`'s; it shares
        # this searcher's random generator, so the state below is all there is to save.
        self.guide = GuidedSearch(
            space, mode=mode, top_k=top_k, max_points=max_points, batch_after=batch_after
        )
        self.guide.rng = self.rng
        self.curves: dict[str, dict[str, Any]] = {}  # key -> {"arch", "scores": {epoch: score}}
        self.n_asked = 0
        self._index_curves()

    def _index_curves(self) -> None:
        """What `fidelity` needs, derived from `curves` and kept up to date by `observe`: each
        architecture's deepest epoch, how many reached each epoch, and the deepest epoch that
        `min_points` reached (it only ever deepens)."""
        self.reached: dict[str, int] = {}
        self._reaching: Counter[int] = Counter()  # epoch -> architectures that reached it
        self._level = 0
        for key, entry in self.curves.items():
            self._reach(key, max(map(int, entry["scores"])))

    def _reach(self, key: str, epoch: int) -> None:
        before = self.reached.get(key, 0)
        if epoch <= before:
            return
        self.reached[key] = epoch
        for e in range(before + 1, epoch + 1):
            self._reaching[e] += 1
        while self._reaching[self._level + 1] >= self.min_points:
            self._level += 1

    def ask(self) -> Arch:
        self.n_asked += 1
        pick = None
        if self.n_asked > self.num_init or len(self.reached) >= self.num_init:  # or warm-started
            level = self.fidelity()
            if level is not None:
                progress = len(self.reached)
                pick = self.guide.queued(level, progress)
                if pick is None:
                    done = self.at(level)
                    pick = self.guide.propose(done, done, level, progress)
        if pick is None:
            pick = self.guide.random_unseen()
        self.guide.asked.add(self.space.key(pick))
        return pick

    def observe(self, arch: Arch, epoch: int, value: float) -> None:
        key = self.space.key(arch)
        entry = self.curves.setdefault(key, {"arch": arch, "scores": {}})
        entry["scores"][str(int(epoch))] = self.score(float(value))
        self._reach(key, int(epoch))

    def update(self, arch: Arch, value: float | None) -> None:
        self.guide.asked.add(self.space.key(arch))
        if value is not None and self.space.key(arch) not in self.curves:
            self.observe(arch, 1, value)  # told without epochs (a table, a reuse)

    def fidelity(self) -> int | None:
        """The deepest epoch at least `min_points` architectures have reached."""
        return self._level or None

    def at(self, epoch: int) -> list[tuple[Arch, float]]:
        """Each architecture's score at `epoch` (those that reached it)."""
        key = str(epoch)
        return [(e["arch"], e["scores"][key]) for e in self.curves.values() if key in e["scores"]]

    def summary(self) -> dict[str, float]:
        level = self.fidelity()
        return {"model_epoch": float(level)} if level is not None else {}

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "curves": self.curves,
            "asked": sorted(self.guide.asked),
            "n_asked": self.n_asked,
            "queue": self.guide.queue,
            "fit_tag": self.guide.fit_tag,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.curves = state["curves"]
        self._index_curves()
        self.guide.asked = set(state["asked"])
        self.n_asked = state["n_asked"]
        self.guide.queue, self.guide.fit_tag = list(state.get("queue", [])), state.get("fit_tag")
