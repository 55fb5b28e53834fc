"""Item ids of records pooled over cross-validation folds: ``fold<k>/<item id>``.

A stage that evaluates one method on several folds (a teacher and its students per fold) writes one
record per run with every fold's test items, each id prefixed by its fold; :func:`fold_labels` gives
the fold of every item back, so :func:`acbench.stats.paired_bootstrap` resamples folds, then items
within them (``groups``). Ids without the prefix are one fold (no fold level).
"""
from __future__ import annotations

import re
from typing import Sequence

_PREFIX = re.compile(r"^(fold\d+)/.")


def fold_item(fold: int, item: str) -> str:
    if fold < 0:
        raise ValueError(f"fold must be >= 0, got {fold}")
    return f"fold{fold}/{item}"


def fold_labels(ids: Sequence[str]) -> list[str] | None:
    """The fold of every item when all ids carry one, else None (one fold); mixed ids are an error."""
    labels = [m.group(1) if (m := _PREFIX.match(i)) else None for i in ids]
    if all(label is None for label in labels):
        return None
    if any(label is None for label in labels):
        raise ValueError("some item ids carry a fold prefix (fold<k>/...) and some do not")
    return labels
