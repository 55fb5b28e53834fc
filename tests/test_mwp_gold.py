"""Gold data audit on the real mirror: gold equations evaluate to the gold answers, the failures
are exactly the committed exceptions file, and gold numbers map to text slots or constants.

Data root: ``ACBENCH_DATA_ROOT``, else ``/work/shared/data`` if it exists, else skipped.
"""
import json
import os
from collections import Counter
from pathlib import Path

import pytest
import yaml

from acbench.mwp.gold_check import (
    EXCEPTIONS_FILE,
    GoldRecord,
    check_all,
    exceptions,
    read_gold_records,
    render_exceptions,
)
from acbench.mwp.numbers import derive_constants, equation_to_slots, mask_numbers

REPO = Path(__file__).resolve().parent.parent
MIN_RATE = 0.99
MIN_MASK_COVERAGE = 0.95


def _data_root() -> Path | None:
    env = os.environ.get("ACBENCH_DATA_ROOT")
    if env:
        return Path(env)
    default = Path("/work/shared/data")
    return default if default.is_dir() else None


def _raw_records(root: Path) -> list[GoldRecord]:
    """Gold records straight from the JSON files (or through ``acbench.data`` when present)."""
    try:
        from acbench.data import load_split
    except ImportError:
        m23k = json.loads((root / "math23k" / "Math_23K.json").read_text(encoding="utf-8"))
        out = [GoldRecord("math23k", str(r["id"]), r["equation"], r["ans"]) for r in m23k]
        for split in ("train", "valid", "test"):
            rows = json.loads((root / "asdiv-a" / f"{split}set.json").read_text(encoding="utf-8"))
            out += [GoldRecord("asdiv_a", r["@ID"], r["Formula"], r["Answer"]) for r in rows]
        return out
    out = [GoldRecord("math23k", str(p.id), p.equation, p.answer) for p in load_split("math23k", "all", root)]
    for split in ("train", "valid", "test"):
        out += [GoldRecord("asdiv_a", str(p.id), p.equation, p.answer) for p in load_split("asdiv_a", split, root)]
    return out


@pytest.fixture(scope="module")
def root() -> Path:
    found = _data_root()
    if found is None or not (found / "math23k" / "Math_23K.json").is_file():
        pytest.skip("no data mirror: set ACBENCH_DATA_ROOT to a folder with math23k/ and asdiv-a/")
    return found


@pytest.fixture(scope="module")
def records(root):
    return _raw_records(root)


@pytest.fixture(scope="module")
def results(records):
    return check_all(records)


def _committed() -> list[dict]:
    return yaml.safe_load((REPO / EXCEPTIONS_FILE).read_text(encoding="utf-8"))


def test_record_counts(records):
    counts = Counter(r.dataset for r in records)
    assert counts == {"math23k": 23162, "asdiv_a": 1218}


def test_reader_matches_module_reader(root, records):
    assert sorted(records, key=lambda r: (r.dataset, r.id)) == sorted(read_gold_records(root), key=lambda r: (r.dataset, r.id))


def test_gold_equations_evaluate_to_gold_answers(results):
    """Math23k >= 99%; ASDiv-A >= 99% once its 28 remainder problems ("248/16=15 r8", whose
    answer is the quotient or the quotient + 1) are set aside; both together >= 99%."""
    def rate(rows):
        return sum(r.ok for r in rows) / len(rows)

    m23k = [r for r in results if r.record.dataset == "math23k"]
    asdiv = [r for r in results if r.record.dataset == "asdiv_a"]
    asdiv_plain = [r for r in asdiv if " r" not in r.record.equation.split("=", 1)[-1]]
    assert len(asdiv) - len(asdiv_plain) == 28
    print(f"strict gold rate: math23k {rate(m23k):.4%}, asdiv_a {rate(asdiv):.4%} "
          f"({rate(asdiv_plain):.4%} without remainder problems), all {rate(results):.4%}")
    assert rate(m23k) >= MIN_RATE
    assert rate(asdiv_plain) >= MIN_RATE
    assert rate(results) >= MIN_RATE


def test_failures_equal_committed_exceptions(results):
    committed = _committed()
    current = exceptions(results)
    assert {(e["dataset"], e["id"]) for e in current} == {(e["dataset"], e["id"]) for e in committed}, (
        "gold failures drifted; rerun `python -m acbench.mwp.gold_check --root <data> --write`"
    )
    assert {e["id"]: e["reason"] for e in current} == {e["id"]: e["reason"] for e in committed}


def test_exceptions_file_is_generated_form():
    text = (REPO / EXCEPTIONS_FILE).read_text(encoding="utf-8")
    entries = yaml.safe_load(text)
    assert text == render_exceptions(entries)
    keys = [(("math23k", "asdiv_a").index(e["dataset"]), e["id"]) for e in entries]
    assert len(set(keys)) == len(keys)
    assert all(set(e) == {"dataset", "id", "equation", "answer", "evaluated", "reason"} for e in entries)


def _ids(path: Path) -> set[str]:
    return set(path.read_text(encoding="utf-8").split())


def test_math23k_masking_coverage(root):
    """Gold numbers map to text slots or constants derived from the train split (>= 95%)."""
    rows = json.loads((root / "math23k" / "Math_23K.json").read_text(encoding="utf-8"))
    held_out = _ids(root / "math23k" / "test_ids.txt") | _ids(root / "math23k" / "valid_ids.txt")
    train = [(r["original_text"], r["equation"]) for r in rows if r["id"] not in held_out]
    assert len(train) == 21162
    constants = [c for c, n in derive_constants(train, min_count=5)]
    assert constants == ["1", "3.14"]
    covered = 0
    for r in rows:
        _, numbers = mask_numbers(r["original_text"])
        try:
            equation_to_slots(r["equation"], numbers, constants)
            covered += 1
        except ValueError:
            pass
    coverage = covered / len(rows)
    print(f"math23k masking coverage: {covered}/{len(rows)} = {coverage:.4%}")
    assert coverage >= MIN_MASK_COVERAGE


def test_asdiv_masking_coverage(root):
    """ASDiv-A spells small numbers out, so words=True; constants from its train split."""
    split_rows = {s: json.loads((root / "asdiv-a" / f"{s}set.json").read_text(encoding="utf-8")) for s in ("train", "valid", "test")}
    pairs = {s: [(r["Body"] + " " + r["Question"], r["Formula"]) for r in rows] for s, rows in split_rows.items()}
    constants = [c for c, n in derive_constants(pairs["train"], words=True)]
    every = [p for rows in pairs.values() for p in rows]
    covered = 0
    for text, formula in every:
        _, numbers = mask_numbers(text, words=True)
        try:
            equation_to_slots(formula, numbers, constants)
            covered += 1
        except ValueError:
            pass
    print(f"asdiv_a masking coverage (words=True, constants {constants}): {covered}/{len(every)}")
    assert covered / len(every) >= MIN_MASK_COVERAGE
