"""Record types returned by the dataset loaders."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MWPProblem:
    """One math word problem, with the strings exactly as in the source file.

    ``equation`` and ``answer`` are not normalised here (Math23k: ``"x=(11-1)*2"`` / ``"20"``;
    ASDiv-A: ``"5+7=12"`` / ``"12 (marbles)"``); ``acbench.mwp`` does that.
    """

    id: str
    dataset: str
    text: str
    equation: str
    answer: str
