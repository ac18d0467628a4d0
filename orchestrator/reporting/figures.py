"""A strategy's plots for its parent run, drawn here from the data it hands over
(`Strategy.figures()`): a searcher proposes, reporting draws."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from orchestrator.reporting.alphas import PLOT_FILE, plot_alphas

# name -> (file name in the search's folder, drawing function taking the data and the path)
FIGURES: dict[str, tuple[str, Callable[..., str]]] = {"alphas": (PLOT_FILE, plot_alphas)}


def draw_figures(figures: dict[str, dict[str, Any]], folder: str) -> list[str]:
    """Each figure drawn into `folder`; the paths drawn. A plot is never worth failing the
    search for: one that cannot be drawn is a warning."""
    paths = []
    for name, data in figures.items():
        file_name, draw = FIGURES[name]
        try:
            paths.append(draw(**data, path=os.path.join(folder, file_name)))
        except Exception as e:
            print(f"nasorch: warning: the {name} plot was not drawn ({e})", file=sys.stderr)
    return paths
