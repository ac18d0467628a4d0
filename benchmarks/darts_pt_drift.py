"""How DARTS-PT's derived cell depends on the supernet's training, without Ray or MLflow.

For each seed, the NB201 supernet (digits as 1x8x8 images, C=8, N=1, alpha held uniform as
`darts_pt` trains it) trains `--epochs` epochs; then DARTS-PT's selection
(`DartsTrainer.perturbation_scores`) derives a cell twice from the same supernet: each edge
measured on the supernet as it is, and as DARTS-PT's Algorithm 1 does it (Wang et al. 2021,
`darts_pt`'s `tune_epochs`): after each edge's choice the weights train `--tune` more epochs
with that edge fixed before the next edge is measured. Prints each derived cell and how many of
its edges are parameter-free (none, skip, avg pool).

    nice -n 19 python benchmarks/darts_pt_drift.py --epochs 50 --tune 2 [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.searchers.darts import PARAMETER_FREE, derived_cell  # noqa: E402
from search_spaces.torch_models.nb201_darts import DartsTrainer  # noqa: E402
from search_spaces.torch_models.nb201_supernet import NB201Supernet  # noqa: E402
from trainables import datasets  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--tune", type=int, default=2)
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = datasets.load("digits", "image", 0.2)
    arrays = (data.x_train, data.y_train, data.x_val, data.y_val)
    tensors = [torch.from_numpy(a) for a in arrays]
    for seed in (int(s) for s in args.seeds.split(",")):
        torch.manual_seed(seed)
        net = NB201Supernet(tuple(tensors[0].shape[1:]), data.num_classes, C=8, N=1)
        trainer = DartsTrainer(net, epochs=args.epochs, seed=seed, arch_lr=0)
        while trainer.epoch < args.epochs:
            trainer.run_epoch(*tensors)
        x, y, x_val, y_val = tensors
        for tune in sorted({0, args.tune}):
            scores = trainer.perturbation_scores(x_val, y_val, tune, x, y)
            cell = derived_cell(scores)
            free = sum(op in PARAMETER_FREE for op in cell)
            name = f"tuned {tune}" if tune else "untuned"
            print(f"seed {seed} epochs {args.epochs} {name:>9}: {free} of 6 free  {cell}")


if __name__ == "__main__":
    main()
