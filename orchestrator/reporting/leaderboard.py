"""Leaderboards: the top trials as a table, printable and saveable as Markdown or CSV."""

from __future__ import annotations

import pandas as pd

COLUMNS = ["trial", "arch", "status", "epochs", "num_params"]


def leaderboard(trials: pd.DataFrame, metric: str, mode: str, top: int = 10) -> pd.DataFrame:
    if not len(trials) or metric not in trials:
        return pd.DataFrame(columns=["trial", metric, *COLUMNS[1:]])
    ranked = trials.dropna(subset=[metric]).sort_values(
        metric, ascending=(mode == "min"), kind="stable"
    )
    cols = ["trial", metric, *[c for c in COLUMNS[1:] if c in ranked]]
    board = ranked[cols].head(top).reset_index(drop=True)
    board.insert(0, "rank", range(1, len(board) + 1))
    return board


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.3g}"
    return "" if value is None else str(value)


def _escape(text: str) -> str:
    """A cell's text kept inside its cell: `|` (NB201 archs are `|nor_conv_3x3~0|+|...`) as `\\|`,
    line breaks as spaces."""
    return " ".join(text.splitlines()).replace("|", "\\|")


def to_markdown(frame: pd.DataFrame) -> str:
    """A Markdown table that also reads well in a terminal (no extra dependency)."""
    header = [_escape(str(c)) for c in frame.columns]
    rows = [[_escape(_cell(v)) for v in row] for row in frame.itertuples(index=False)]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *[line(r) for r in rows]])
