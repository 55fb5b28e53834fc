"""Per-item records of an evaluation: which test items a run got right, and what it predicted.

Every evaluation of every run (variant × seed × fold) writes one small CSV under the stage's
results folder, ``<stage>/items/<run>.csv`` (``<run>`` e.g. ``test``, ``kd@s0``, ``prune@0.30``),
with the header ``item,correct,prediction``: the item's id in its split, 1/0, and the prediction
(the prefix expression, space-separated, or the class index). Timing claims use the same files with
the header ``round,seconds`` (one timed call per candidate per interleaved round).

Files are deterministic bytes (fixed column order, ``\\n`` line ends, shortest float repr) and
``metrics.json`` references each by its SHA-256 (``"items": {run: {"file", "sha256", "rows"}}``),
so a record is never read if it does not match the metrics it belongs to. Writing a stage's
records removes files of earlier runs that are not part of the new set (nothing stale); inside a
stage run both the writes and the removals wait for the stage's end (:func:`acbench.results.deferred_writes`).
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from acbench.results import remove_atomic, write_text_atomic
from acbench.stage_outputs import ITEMS_DIR

OUTCOME_HEADER = ("item", "correct", "prediction")
TIMING_HEADER = ("round", "seconds")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+(@[A-Za-z0-9_.-]+)?$")


class ItemsError(ValueError):
    """A per-item record is missing, does not match its digest, or is malformed."""


@dataclass(frozen=True)
class Outcomes:
    """Per-item outcomes of one evaluation, in the order of the test split."""

    ids: tuple[str, ...]
    correct: tuple[bool, ...]
    predictions: tuple[str, ...]

    def __post_init__(self):
        if not (len(self.ids) == len(self.correct) == len(self.predictions)):
            raise ValueError("ids, correct and predictions differ in length")

    @property
    def accuracy(self) -> float:
        """Percentage correct."""
        if not self.ids:
            raise ValueError("no items evaluated")
        return 100.0 * sum(self.correct) / len(self.ids)

    def to_json(self) -> dict:
        return {"ids": list(self.ids), "correct": [int(c) for c in self.correct],
                "predictions": list(self.predictions)}

    @classmethod
    def from_json(cls, data: dict) -> "Outcomes":
        return cls(tuple(str(i) for i in data["ids"]), tuple(bool(c) for c in data["correct"]),
                   tuple(str(p) for p in data["predictions"]))


def _csv_bytes(header: Sequence[str], rows: Sequence[Sequence]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


@dataclass
class ItemLog:
    """Collects a stage's records; :meth:`write` puts them under ``items/`` and returns the index for
    ``metrics.json``."""

    tables: dict[str, tuple[tuple[str, ...], list[tuple]]] = field(default_factory=dict)

    def _add(self, run: str, header: tuple[str, ...], rows: list[tuple]) -> None:
        if not _NAME.match(run):
            raise ValueError(f"record name {run!r} must match {_NAME.pattern}")
        if run in self.tables:
            raise ValueError(f"record {run!r} added twice")
        self.tables[run] = (header, rows)

    def add_outcomes(self, run: str, outcomes: Outcomes) -> None:
        self._add(run, OUTCOME_HEADER, [(i, int(c), p) for i, c, p in
                                        zip(outcomes.ids, outcomes.correct, outcomes.predictions)])

    def add_timings(self, run: str, seconds: Sequence[float]) -> None:
        self._add(run, TIMING_HEADER, [(r, repr(float(s))) for r, s in enumerate(seconds)])

    def write(self, out_dir: Path) -> dict[str, dict]:
        folder = Path(out_dir) / ITEMS_DIR
        index = {}
        for run, (header, rows) in sorted(self.tables.items()):
            data = _csv_bytes(header, rows)
            write_text_atomic(folder / f"{run}.csv", data.decode("utf-8"))  # deferred to the stage's end
            index[run] = {"file": f"{ITEMS_DIR}/{run}.csv", "sha256": hashlib.sha256(data).hexdigest(),
                          "rows": len(rows)}
        if folder.is_dir():
            keep = {f"{run}.csv" for run in self.tables}
            for old in folder.iterdir():
                if old.is_file() and old.suffix == ".csv" and old.name not in keep:
                    remove_atomic(old)
        return index


def read_records(stage_dir: Path, index: dict, run: str) -> list[dict[str, str]]:
    """Rows of record ``run`` of a stage, after checking its digest against ``metrics.json``'s index."""
    if run not in index:
        raise ItemsError(f"{stage_dir}: metrics.json lists no per-item record {run!r} "
                         f"(records: {sorted(index) or 'none'})")
    entry = index[run]
    path = stage_dir / entry["file"]
    if not path.is_file():
        raise ItemsError(f"{path}: per-item record missing (re-run the stage)")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ItemsError(f"{path}: content does not match the SHA-256 in {stage_dir / 'metrics.json'} "
                         "(stale or edited; re-run the stage)")
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def runs_of(index: dict, run: str) -> dict[int | None, str]:
    """Records of ``run``: ``{seed: record name}``, seed ``None`` for a run without seeds."""
    out: dict[int | None, str] = {}
    if run in index:
        out[None] = run
    pattern = re.compile(rf"^{re.escape(run)}@s(\d+)$")
    for name in index:
        m = pattern.match(name)
        if m:
            out[int(m.group(1))] = name
    return out


RECORD_KEY = "items"  # key of the outcomes inside a finished run's resume record (runs/<name>.json)


def without_outcomes(record: dict) -> dict:
    """A run record as it goes into ``metrics.json``'s meta (the outcomes live in ``items/`` instead)."""
    return {k: v for k, v in record.items() if k != RECORD_KEY}
