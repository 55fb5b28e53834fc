"""Claims judged end to end from per-item records: compare, design (MDE), floors, check mode, list."""
import json

import numpy as np
import pytest

from acbench.cli import main
from acbench.config import ConfigError, load_replication
from acbench.items import ItemLog, Outcomes
from acbench.report.check import check
from acbench.report.markdown import build_report
from acbench.report.verdict import NO_ITEMS, NOT_TESTABLE, judge
from acbench.report.verdict_record import freeze_verdicts
from acbench.results import write_metrics
from acbench.stats import CONTRADICTED, INCONCLUSIVE, SUPPORTED, mde_paired_proportion
from engine_fixtures import REPLICATION, edit_yaml, fake_repo, published_values  # noqa: F401

GAIN = {
    "id": "method_beats_base", "claim": "The method beats the base.", "metric": "accuracy difference",
    "value": 0, "unit": "points", "where": "test", "direction": "higher_is_better", "tolerance": 0,
    "tolerance_reason": "directional", "profiles": ["cpu"],
    "compare": {"statistic": "difference", "a": {"stage": "efficiency", "run": "method"},
                "b": {"stage": "efficiency", "run": "test"}},
    "design": {"disagreement": 0.1, "basis": "assumed", "at": {"cpu": {"items": 1000, "seeds": 3}}},
}
FLOOR = {"id": "base_floor", "what": "the base is healthy", "kind": "at_least",
         "result": {"stage": "efficiency", "key": "base_accuracy"}, "bound": 50, "claims": ["method_beats_base"]}


@pytest.fixture
def repo(fake_repo):
    edit_yaml(fake_repo / "replications" / REPLICATION / "published.yaml",
              lambda d: (d["claims"].append(dict(GAIN)), d.setdefault("floors", []).append(dict(FLOOR))))
    return fake_repo


def write_runs(root, p_method, p_base, items=1000, seeds=3, seed=0, records=True, base_accuracy=80.0):
    rng = np.random.default_rng(seed)
    log, metrics = ItemLog(), {**published_values(root), "base_accuracy": base_accuracy}  # every claimed key exists
    ids = tuple(f"q{i}" for i in range(items))
    base = rng.random(items) < p_base
    log.add_outcomes("test", Outcomes(ids, tuple(bool(x) for x in base), ("0",) * items))
    metrics["accuracy"] = 100 * base.mean()
    for s in range(seeds):
        method = rng.random(items) < p_method
        log.add_outcomes(f"method@s{s}", Outcomes(ids, tuple(bool(x) for x in method), ("1",) * items))
        metrics[f"method.accuracy@s{s}"] = 100 * method.mean()
    out = root / "results" / "cpu" / REPLICATION / "efficiency"
    write_metrics(out, metrics, [], {}, log.write(out) if records else None)
    return out


def _judge(root, profile="cpu"):
    rep = load_replication(REPLICATION)
    return judge(rep, next(c for c in rep.published.claims if c.id == "method_beats_base"), profile)


@pytest.mark.parametrize("p_method,p_base,items,verdict", [
    (0.85, 0.70, 1000, SUPPORTED), (0.7, 0.7, 30, INCONCLUSIVE), (0.60, 0.80, 1000, CONTRADICTED)])
def test_verdict_from_per_item_records(repo, p_method, p_base, items, verdict):
    write_runs(repo, p_method, p_base, items)
    r = _judge(repo)
    assert r.verdict == verdict
    assert r.low < r.estimate < r.high and "two-level" in r.method
    assert r.mde == pytest.approx(mde_paired_proportion(1000, 0.1, seeds=3))


def test_results_without_records_are_inconclusive_with_their_point_value(repo):
    write_runs(repo, 0.85, 0.70, records=False)
    r = _judge(repo)
    assert r.verdict == INCONCLUSIVE and r.reason == NO_ITEMS
    assert r.estimate == pytest.approx(15, abs=3) and r.low is None
    assert "inconclusive (no per-item data)" in build_report([load_replication(REPLICATION)], repo / "R.md")


def test_failed_floor_makes_the_claim_not_testable_naming_floor_and_value(repo):
    write_runs(repo, 0.85, 0.70, base_accuracy=42.0)
    r = _judge(repo)
    assert r.verdict == NOT_TESTABLE
    assert r.reason == "floor base_floor failed: efficiency:base_accuracy = 42 (floor ≥ 50)"
    assert r.estimate is not None  # the estimate is still shown


def test_edited_record_is_refused(repo):
    out = write_runs(repo, 0.85, 0.70)
    path = out / "items" / "test.csv"
    lines = path.read_text().splitlines(keepends=True)
    item, correct, prediction = lines[1].rstrip("\n").split(",")
    lines[1] = f"{item},{1 - int(correct)},{prediction}\n"  # one outcome flipped by hand
    path.write_text("".join(lines))
    r = _judge(repo)
    assert r.verdict == NOT_TESTABLE and "does not match the SHA-256" in r.reason


def test_speedup_is_paired_over_timing_rounds(repo):
    rng = np.random.default_rng(1)
    drift = rng.normal(0, 0.05, 20)
    log = ItemLog()
    log.add_timings("latency.b32_s64@0.00", 1.0 + drift)
    log.add_timings("latency.b32_s64@0.30", 0.75 + drift)
    out = repo / "results" / "cpu" / REPLICATION / "efficiency"
    write_metrics(out, {"speedup_pct.b32_s64@0.30": 33.3}, [], {}, log.write(out))
    rep = load_replication(REPLICATION)
    r = judge(rep, next(c for c in rep.published.claims if c.id == "speedup_30"), "cpu")
    assert r.verdict == SUPPORTED and r.estimate == pytest.approx(100 / 0.75 - 100, abs=1)
    assert 22.5 < r.low < r.estimate < r.high


def test_check_compares_with_the_committed_verdicts(repo, capsys):
    write_runs(repo, 0.85, 0.70)
    rep = load_replication(REPLICATION)
    path = freeze_verdicts(rep, "cpu")
    record = json.loads(path.read_text())["claims"]["method_beats_base"]
    assert record["verdict"] == SUPPORTED and record["low"] < record["estimate"] < record["high"]
    assert check([rep], "cpu").ok
    write_runs(repo, 0.85, 0.70, seed=1)  # same truth, new sample: within the committed interval
    assert check([rep], "cpu").ok
    write_runs(repo, 0.70, 0.70, seed=2)  # the effect is gone
    failures = check([rep], "cpu").failures
    assert any(f.startswith("claim method_beats_base (dynamic_head_pruning_kd, profile cpu): verdict") for f in failures)
    write_runs(repo, 0.95, 0.70)  # still supported, but the estimate moved far beyond the committed interval
    failures = check([rep], "cpu").failures
    assert any("claim method_beats_base" in f and "allowed move" in f for f in failures)


def test_list_prints_the_mde_per_profile(repo, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert f"cpu {mde_paired_proportion(1000, 0.1):.2f} points (1000 items x 3 seeds x 1 folds)" in out


@pytest.mark.parametrize("change,pattern", [
    (lambda c, f: c["compare"].pop("b"), r"claims\.\d+\.compare: Value error, statistic 'difference' needs \['a', 'b'\]"),
    (lambda c, f: c["compare"]["a"].update(stage="nowhere"), r"claims\[method_beats_base\]\.compare\.stage: 'nowhere'"),
    (lambda c, f: f.update(claims=["no_such_claim"]), r"floor base_floor: claims \['no_such_claim'\]"),
    (lambda c, f: f.pop("bound"), r"kind 'at_least' needs \['bound'\]"),
    (lambda c, f: c["design"]["at"].update(gpu={"items": 3}), r"design\.at\.gpu"),
])
def test_bad_compare_design_or_floor_names_file_and_field(repo, change, pattern):
    def edit(d):
        claim = next(c for c in d["claims"] if c["id"] == "method_beats_base")
        change(claim, d["floors"][-1])
    path = repo / "replications" / REPLICATION / "published.yaml"
    edit_yaml(path, edit)
    with pytest.raises(ConfigError, match=pattern) as err:
        load_replication(REPLICATION)
    assert str(path) in str(err.value)


def _write_records(root, runs: dict[str, np.ndarray], extra_metrics=None):
    log = ItemLog()
    for name, outcomes in runs.items():
        ids = tuple(f"q{i}" for i in range(len(outcomes)))
        log.add_outcomes(name, Outcomes(ids, tuple(bool(x) for x in outcomes), ("0",) * len(outcomes)))
    out = root / "results" / "cpu" / REPLICATION / "efficiency"
    write_metrics(out, {**published_values(root), **(extra_metrics or {})}, [], {}, log.write(out))


def _with_claim(root, claim):
    edit_yaml(root / "replications" / REPLICATION / "published.yaml", lambda d: d["claims"].append(claim))
    rep = load_replication(REPLICATION)
    return judge(rep, next(c for c in rep.published.claims if c.id == claim["id"]), "cpu")


def _exact_accuracy(n, correct, seed):
    out = np.zeros(n, dtype=bool)
    out[np.random.default_rng(seed).choice(n, correct, replace=False)] = True
    return out


def test_prunable_share_of_a_pruning_curve(fake_repo):
    """Accuracy 80 / 79.5 / 78.6 / 70% at 0 / 10 / 20 / 30% of heads pruned, 2 points allowed: 20% is
    prunable, and no resample reaches 30% (a 10-point drop), so a claim of >= 30% is contradicted."""
    _write_records(fake_repo, {f"michel@{pct}": _exact_accuracy(1000, k, pct)
                               for pct, k in ((0, 800), (10, 795), (20, 786), (30, 700))})
    r = _with_claim(fake_repo, {**GAIN, "id": "prunable", "value": 40, "tolerance": 10, "unit": "% of heads",
                                "compare": {"statistic": "prunable_share", "drop_points": 2.0,
                                            "a": {"stage": "efficiency", "run": "michel"}}, "design": None})
    assert r.estimate == pytest.approx(20.0)
    assert r.low <= 20.0 <= r.high < 30.0 and r.verdict == CONTRADICTED


def test_recovery_share_is_paired_over_three_conditions(fake_repo):
    teacher = _exact_accuracy(1000, 800, 1)
    pruned = teacher.copy()
    pruned[np.flatnonzero(teacher)[:200]] = False  # pruning loses 20 points
    kd = pruned.copy()
    kd[np.flatnonzero(teacher & ~pruned)[:150]] = True  # KD wins back 15 of them: 75%
    _write_records(fake_repo, {"test": teacher, "prune@0.30": pruned, "kd@s0": kd})
    r = _with_claim(fake_repo, {**GAIN, "id": "recovers", "value": 50, "unit": "%", "design": None,
                                "compare": {"statistic": "recovery", "a": {"stage": "efficiency", "run": "kd"},
                                            "b": {"stage": "efficiency", "run": "prune@0.30"},
                                            "reference": {"stage": "efficiency", "run": "test"}}})
    assert r.estimate == pytest.approx(75.0) and 50 < r.low < 75 < r.high and r.verdict == SUPPORTED


def test_convergence_floor_reads_every_named_runs_curve(repo):
    """A floor over the curves of several runs fails on the worst one and names it; runs it does not
    name do not count."""
    converged = [2.0] * 10 + [1.0] * 10 + [0.5] * 10 + [0.5] * 10 + [0.49] * 10  # last fifth: 0.7% of the drop
    learning = [2.0 - 0.03 * i for i in range(50)]  # still falling: 0.3 of the 1.2 between first and last fifth
    out = write_runs(repo, 0.85, 0.70)
    data = json.loads((out / "metrics.json").read_text())
    data["meta"]["loss_curves"] = {"method-s0": converged, "method-s1": learning, "other-s0": learning}
    (out / "metrics.json").write_text(json.dumps(data))
    floor = {"id": "converged", "what": "runs converged", "kind": "converged", "runs": ["method"],
             "result": {"stage": "efficiency", "key": "loss_curves"}, "bound": 10, "claims": ["method_beats_base"]}
    edit_yaml(repo / "replications" / REPLICATION / "published.yaml", lambda d: d["floors"].append(floor))
    r = _judge(repo)
    assert r.verdict == NOT_TESTABLE
    assert r.reason == ("floor converged failed: the last 20% of training made 25.0% of the loss decrease "
                        "(worst of 2 runs: method-s1) (floor ≤ 10%)")
    data["meta"]["loss_curves"]["method-s1"] = converged
    (out / "metrics.json").write_text(json.dumps(data))
    assert _judge(repo).verdict == SUPPORTED
