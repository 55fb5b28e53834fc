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
    outcome = check([load_replication(REPLICATION)], "paper")  # nothing ran, no reference
    assert not outcome.ok
    smoke = check([load_replication(REPLICATION)], "smoke")  # no smoke claims; the gated profile needs a reference
    assert not smoke.ok and any("no reference" in f for f in smoke.failures)


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


def _frozen_smoke(fake_repo):
    rep = load_replication(REPLICATION)
    values = published_values(fake_repo)
    deterministic = [k for k in values if not k.startswith(("speedup", "latency"))]
    write_stage_metrics(fake_repo, "smoke", values, deterministic)
    return rep, values, deterministic, freeze(rep, "smoke")


def _edit_reference(path, change):
    import json

    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_widened_tolerance_in_the_reference_file_fails(fake_repo, capsys):
    rep, values, deterministic, path = _frozen_smoke(fake_repo)
    values["flops_reduction_pct@0.30"] *= 1.5
    write_stage_metrics(fake_repo, "smoke", values, deterministic)
    _edit_reference(path, lambda d: d.update(rel_tol=1.0, abs_tol=100.0))
    assert main(["check", "--profile", "smoke"]) == 1
    out = capsys.readouterr().out
    assert "sets ['abs_tol', 'rel_tol']; the gate's tolerances come from the code" in out
    assert "metric flops_reduction_pct@0.30 (claim flops_reduction_30)" in out  # compared at the code's tolerance


def test_a_stage_dropped_from_the_reference_fails(fake_repo, capsys):
    _, _, _, path = _frozen_smoke(fake_repo)
    _edit_reference(path, lambda d: d["stages"].pop("efficiency"))
    assert main(["check", "--profile", "smoke"]) == 1
    assert f"{REPLICATION}/efficiency: not covered by {path}; every stage is gated" in capsys.readouterr().out


def test_a_metric_dropped_from_the_reference_fails(fake_repo, capsys):
    _, _, _, path = _frozen_smoke(fake_repo)
    _edit_reference(path, lambda d: d["stages"]["efficiency"].pop("flops_reduction_pct@0.30"))
    assert main(["check", "--profile", "smoke"]) == 1
    assert "deterministic metric flops_reduction_pct@0.30 is not in" in capsys.readouterr().out


def test_missing_reference_at_the_gated_profile_fails(fake_repo, capsys):
    write_stage_metrics(fake_repo, "smoke", published_values(fake_repo), [])
    assert main(["check", "--profile", "smoke"]) == 1
    assert f"{REPLICATION}: no reference" in capsys.readouterr().out


def test_reference_command_cannot_loosen_the_gate(fake_repo, capsys):
    rep, values, deterministic, path = _frozen_smoke(fake_repo)
    before = path.read_text()
    write_stage_metrics(fake_repo, "smoke", values, deterministic[1:])  # a metric no longer marked deterministic
    assert main(["reference", "--profile", "smoke"]) == 2
    assert f"would stop gating efficiency.{deterministic[0]}" in capsys.readouterr().err
    assert path.read_text() == before
    assert "rel_tol" not in before


def test_claim_whose_key_no_stage_produces_fails_naming_it(fake_repo, capsys):
    from engine_fixtures import edit_yaml

    _frozen_smoke(fake_repo)  # metrics with the right keys
    published = fake_repo / "replications" / REPLICATION / "published.yaml"
    edit_yaml(published, lambda d: next(c for c in d["claims"] if c["id"] == "params_reduction_30")["result"]
              .update(key="params_reduction_pct.whole_modle@0.30"))
    assert main(["check", "--profile", "smoke"]) == 1
    assert ("claim params_reduction_30 (dynamic_head_pruning_kd): result key "
            "'params_reduction_pct.whole_modle@0.30' is produced by no run of stage efficiency") in capsys.readouterr().out
