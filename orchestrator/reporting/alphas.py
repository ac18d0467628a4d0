"""A differentiable search's operation weights per edge of the NB201 cell (PNG), for its parent
run: drawn with a `Figure`, never pyplot, like the other plots."""

from __future__ import annotations

from matplotlib.figure import Figure

from search_spaces.nb201_cell import EDGES, OPS

PLOT_FILE = "darts_alphas.png"


def plot_alphas(
    probabilities: list[list[list[float]]], scores: list[list[float]], select: str, path: str
) -> str:
    """Grouped bars per edge of the final softmax(alpha) and, for DARTS-PT, of the rise in
    validation loss without each op; the derived cell's ops hatched."""
    panels = [("softmax(alpha)", probabilities[-1])]
    if select == "perturbation":
        panels.append(("validation loss rise without it", scores))
    cell = [max(range(len(OPS)), key=row.__getitem__) for row in scores]
    fig = Figure(figsize=(9, 1.2 + 2.6 * len(panels)))
    width = 0.8 / len(OPS)
    for n, (label, rows) in enumerate(panels, start=1):
        ax = fig.add_subplot(len(panels), 1, n)
        for k, op in enumerate(OPS):
            xs = [e + (k - (len(OPS) - 1) / 2) * width for e in range(len(EDGES))]
            for bar, chosen in zip(
                ax.bar(xs, [r[k] for r in rows], width, label=op, color=f"C{k}"), cell, strict=True
            ):
                if chosen == k:
                    bar.set(hatch="//", edgecolor="black")
        ax.set_xticks(range(len(EDGES)), [f"{j} <- {i}" for j, i in EDGES])
        ax.set_ylabel(label, fontsize=8)
    ax.set_xlabel(f"edge (node <- node); hatched: the derived cell ({select})")
    fig.axes[0].set_title(f"darts: operations after {len(probabilities) - 1} supernet epochs")
    fig.axes[0].legend(fontsize=7, ncols=len(OPS), loc="lower center", bbox_to_anchor=(0.5, 1.12))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
