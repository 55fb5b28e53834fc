"""Verdicts, REPORT.md, the check mode and the smoke reference gate, on synthetic results."""
import pytest

from acbench.cli import main
from acbench.config import Claim, load_replication
from acbench.report.check import check
from acbench.report.markdown import build_report
from acbench.report.reference import freeze
from acbench.report.verdict import NOT_CHECKABLE, NOT_REPRODUCED, REPRODUCED, judge, within_tolerance
from engine_fixtures import REPLICATION, fake_repo, published_values, write_stage_metrics  # noqa: F401


def _claim(direction, value=10.0, tolerance=1.0):
    return Claim(id="c", claim="x", metric="m", value=value, unit="%", where="abstract", direction=direction,
                 tolerance=tolerance, tolerance_reason="r", profiles=["cpu"])


@pytest.mark.parametrize("direction,value,ok", [
    ("match", 10.9, True), ("match", 9.1, True), ("match", 11.1, False), ("match", 8.9, False),
    ("higher_is_better", 9.0, True), ("higher_is_better", 30.0, True), ("higher_is_better", 8.9, False),
    ("lower_is_better", 11.0, True), ("lower_is_better", -5.0, True), ("lower_is_better", 11.1, False),
])
def test_tolerance_by_direction(direction, value, ok):
    assert within_tolerance(_claim(direction), value) is ok


def test_verdicts_per_profile(fake_repo):
    rep = load_replication(REPLICATION)
    values = published_values(fake_repo)
    write_stage_metrics(fake_repo, "cpu", values)
    write_stage_metrics(fake_repo, "smoke", values)
    by_id = {c.id: c for c in rep.published.claims}
    assert judge(rep, by_id["params_reduction_30"], "cpu").verdict == REPRODUCED
    smoke = judge(rep, by_id["params_reduction_30"], "smoke")
    assert smoke.verdict == NOT_CHECKABLE and smoke.reproduced == pytest.approx(18.7)
    assert judge(rep, by_id["params_reduction_30"], "paper").verdict == NOT_CHECKABLE  # never ran
    del values["speedup_pct.b32_s64@0.30"]  # a key this profile does not measure
    write_stage_metrics(fake_repo, "smoke", values)
    assert judge(rep, by_id["speedup_30"], "smoke").verdict == NOT_CHECKABLE
    write_stage_metrics(fake_repo, "cpu", values)
    missing = judge(rep, by_id["speedup_30"], "cpu")
    assert missing.verdict == NOT_REPRODUCED and "has no metric 'speedup_pct.b32_s64@0.30'" in missing.reason


def test_check_passes_within_tolerance_and_fails_naming_the_claim(fake_repo):
    rep = load_replication(REPLICATION)
    values = published_values(fake_repo)
    values["params_reduction_pct.whole_model@0.30"] += 0.9
    write_stage_metrics(fake_repo, "cpu", values)
    assert check([rep], "cpu").ok
    values["params_reduction_pct.whole_model@0.30"] += 0.2  # now 1.1 points off: outside ± 1
    write_stage_metrics(fake_repo, "cpu", values)
    outcome = check([rep], "cpu")
    assert not outcome.ok and len(outcome.failures) == 1
    assert "claim params_reduction_30" in outcome.failures[0] and "not reproduced" in outcome.failures[0]
    assert main(["check", "--profile", "cpu"]) == 1


def test_check_fails_when_a_checkable_stage_never_ran(fake_repo):
    outcome = check([load_replication(REPLICATION)], "cpu")
    assert not outcome.ok
    assert any("claim speedup_30" in f and "has not run" in f for f in outcome.failures)


def test_check_with_nothing_to_check_fails(fake_repo):
    outcome = check([load_replication(REPLICATION)], "smoke")  # no smoke claims, no reference
    assert not outcome.ok and outcome.failures == []


def test_smoke_reference_gate(fake_repo, capsys):
    rep = load_replication(REPLICATION)
    values = published_values(fake_repo)
    values["latency_ms.b1_s16@0.30"] = 1.0
    deterministic = [k for k in values if not k.startswith(("speedup", "latency"))]
    write_stage_metrics(fake_repo, "smoke", values, deterministic)
    path = freeze(rep, "smoke")
    assert path == fake_repo / "replications" / REPLICATION / "reference" / "smoke.json"
    assert main(["check", "--profile", "smoke"]) == 0
    values["latency_ms.b1_s16@0.30"] = 5.0  # timings are not gated
    write_stage_metrics(fake_repo, "smoke", values, deterministic)
    assert main(["check", "--profile", "smoke"]) == 0
    values["flops_reduction_pct@0.30"] *= 1.001  # a deterministic metric moved
    write_stage_metrics(fake_repo, "smoke", values, deterministic)
    capsys.readouterr()
    assert main(["check", "--profile", "smoke"]) == 1
    out = capsys.readouterr().out
    assert "metric flops_reduction_pct@0.30 (claim flops_reduction_30)" in out


def test_report_rows(fake_repo):
    rep = load_replication(REPLICATION)
    values = published_values(fake_repo)
    values["flops_reduction_pct@0.30"] = 10.0
    write_stage_metrics(fake_repo, "cpu", values)
    text = build_report([rep], fake_repo / "results" / "REPORT.md")
    row = next(line for line in text.splitlines() if line.startswith("| `flops_reduction_30`"))
    assert "| 19.30% | 10.00% | -9.30 pts | ± 1 pts | ❌ not reproduced | cpu |" in row
    row = next(line for line in text.splitlines() if line.startswith("| `params_reduction_30`"))
    assert "✅ reproduced" in row
    assert "`speedup_30`" in text


def test_malformed_reference_is_a_clear_error(fake_repo, capsys):
    rep = load_replication(REPLICATION)
    write_stage_metrics(fake_repo, "smoke", published_values(fake_repo), [])
    path = freeze(rep, "smoke")
    path.write_text("{not json")
    assert main(["check", "--profile", "smoke"]) == 2
    assert "reference/smoke.json: not valid JSON" in capsys.readouterr().err


def test_report_shows_the_seed_spread_when_the_metric_has_one(fake_repo):
    rep = load_replication(REPLICATION)
    values = published_values(fake_repo)
    values["flops_reduction_pct@0.30.std"] = 0.25
    values["flops_reduction_pct@0.30.n"] = 3
    write_stage_metrics(fake_repo, "cpu", values)
    rows = build_report([rep], fake_repo / "results" / "REPORT.md").splitlines()
    row = next(line for line in rows if line.startswith("| `flops_reduction_30`"))
    assert "| 19.30% ± 0.25 (std over 3 seeds) |" in row
    row = next(line for line in rows if line.startswith("| `params_reduction_30`"))
    assert "std over" not in row
