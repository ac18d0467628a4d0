"""Leaderboards as Markdown (`orchestrator/report.py`)."""

from __future__ import annotations

import pandas as pd

from orchestrator.reporting.leaderboard import leaderboard, to_markdown

NB201 = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"


def _cells(line: str) -> list[str]:
    """A Markdown table row split as a Markdown renderer does: on pipes not escaped."""
    cells, cell, escaped = [], "", False
    for ch in line.strip()[1:-1]:
        if ch == "|" and not escaped:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += ch
        escaped = ch == "\\" and not escaped
    return [*cells, cell.strip()]


def test_pipes_in_cells_are_escaped():
    trials = pd.DataFrame(
        {
            "trial": ["t001", "t002"],
            "test_accuracy": [93.5, 91.25],
            "arch": [NB201, "a|b\nc"],
            "status": ["completed", "completed"],
        }
    )
    lines = to_markdown(leaderboard(trials, "test_accuracy", "max")).splitlines()
    header, sep, first, second = lines
    assert _cells(header) == ["rank", "trial", "test_accuracy", "arch", "status"]
    assert len(_cells(sep)) == 5
    assert _cells(first) == ["1", "t001", "93.5000", NB201.replace("|", "\\|"), "completed"]
    assert _cells(second)[3] == "a\\|b c"
    assert len({len(line) for line in lines}) == 1  # columns still line up


def test_plain_cells_are_unchanged():
    frame = pd.DataFrame({"trial": ["t001"], "score": [0.5], "arch": ["mlp[32] relu"]})
    assert to_markdown(frame).splitlines()[2] == "| t001  | 0.5000 | mlp[32] relu |"
