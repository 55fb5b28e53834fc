"""Verdicts, REPORT.md, the check mode and the smoke reference gate, on synthetic results."""
import math

import pytest

from acbench.cli import main
from acbench.config import Claim, load_replication
from acbench.report.check import check
from acbench.report.markdown import build_report, fmt
from acbench.report.reference import freeze
from acbench.report.verdict import NOT_TESTABLE, judge
from acbench.stats import CONTRADICTED, SUPPORTED
from engine_fixtures import REPLICATION, fake_repo, published_values, write_stage_metrics  # noqa: F401


def _claim(direction, value=10.0, tolerance=1.0):
    return Claim(id="c", claim="x", metric="m", value=value, unit="%", where="abstract", direction=direction,
                 tolerance=tolerance, tolerance_reason="r", profiles=["cpu"])


@pytest.mark.parametrize("direction,bounds", [
    ("match", (9.0, 11.0)), ("higher_is_better", (9.0, math.inf)), ("lower_is_better", (-math.inf, 11.0)),
])
def test_claim_bounds_by_direction(direction, bounds):
    assert _claim(direction).bounds == bounds


def test_exact_claims_are_judged_per_profile(fake_repo):
    rep = load_replication(REPLICATION)
    values = published_values(fake_repo)
    write_stage_metrics(fake_repo, "cpu", values)
    write_stage_metrics(fake_repo, "smoke", values)
    by_id = {c.id: c for c in rep.published.claims}
    cpu = judge(rep, by_id["params_reduction_30"], "cpu")
    assert cpu.verdict == SUPPORTED and cpu.low == cpu.high == pytest.approx(18.7)
    smoke = judge(rep, by_id["params_reduction_30"], "smoke")
    assert smoke.verdict == NOT_TESTABLE and smoke.estimate == pytest.approx(18.7)
    assert "only cpu, paper runs can check it" in smoke.reason
    never = judge(rep, by_id["params_reduction_30"], "paper")
    assert never.verdict == NOT_TESTABLE and "has not run at profile paper" in never.reason
    values["params_reduction_pct.whole_model@0.30"] = 20.0  # outside 18.7 ± 1
    write_stage_metrics(fake_repo, "cpu", values)
    assert judge(rep, by_id["params_reduction_30"], "cpu").verdict == CONTRADICTED
    del values["speedup_pct.b32_s64@0.30"]  # neither timing rounds nor the point value
    write_stage_metrics(fake_repo, "cpu", values)
    missing = judge(rep, by_id["speedup_30"], "cpu")
    assert missing.verdict == NOT_TESTABLE and "has no metric 'speedup_pct.b32_s64@0.30'" in missing.reason


def test_strict_check_fails_naming_a_claim_that_is_not_supported(fake_repo):
    rep = load_replication(REPLICATION)
    values = published_values(fake_repo)
    values["params_reduction_pct.whole_model@0.30"] += 0.9
    write_stage_metrics(fake_repo, "cpu", values)
    strict = check([rep], "cpu", strict=True)
    # params and flops are exact and within their bands; the speed-up has no timing rounds: inconclusive
    assert [f.split(":")[0] for f in strict.failures] == ["claim speedup_30 (dynamic_head_pruning_kd, profile cpu)"]
    assert "inconclusive: no per-item data" in strict.failures[0]
    values["params_reduction_pct.whole_model@0.30"] += 0.2  # now 1.1 points off: outside ± 1
    write_stage_metrics(fake_repo, "cpu", values)
    failures = check([rep], "cpu", strict=True).failures
    assert any(f.startswith("claim params_reduction_30") and "contradicted" in f for f in failures)
    assert main(["check", "--profile", "cpu", "--strict"]) == 1


def test_strict_check_fails_when_a_checkable_stage_never_ran(fake_repo):
    outcome = check([load_replication(REPLICATION)], "cpu", strict=True)
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
    assert main(["reference", "--profile", "smoke"]) == 0
    folder = fake_repo / "replications" / REPLICATION / "reference"
    assert (folder / "smoke.json").is_file() and (folder / "smoke.verdicts.json").is_file()
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
    assert "claim flops_reduction_30 (dynamic_head_pruning_kd, profile smoke): estimate 19.32" in out


def test_report_opens_with_one_row_per_claim(fake_repo):
    rep = load_replication(REPLICATION)
    values = published_values(fake_repo)
    values["flops_reduction_pct@0.30"] = 10.0
    write_stage_metrics(fake_repo, "cpu", values)
    write_stage_metrics(fake_repo, "smoke", values)
    text = build_report([rep], fake_repo / "results" / "REPORT.md")
    lines = text.splitlines()
    first_table = lines.index("| claim | verdict | estimate [95% CI] | threshold | MDE | reason |")
    assert not any(line.startswith("## ") for line in lines[:first_table])
    rows = [line for line in lines[first_table + 2:] if line.startswith("| `")]
    rows = rows[:len(rep.published.claims)]
    assert len({r.split("`")[1] for r in rows}) == len(rep.published.claims)  # one row per claim, not per profile
    flops = next(r for r in rows if r.startswith("| `flops_reduction_30` (dynamic_head_pruning_kd, cpu)"))
    assert "| ❌ contradicted | 10.00% (exact) | 18.30% … 20.30% | — | the value lies outside the band |" in flops
    assert f"{len(rep.published.claims)} claims: 1 supported, 1 contradicted, 1 inconclusive" in text


@pytest.mark.parametrize("value,unit,signed,text", [
    (0.83, "points", False, "0.83 points"), (18.7, "%", False, "18.70%"), (40, "% of heads", False, "40.00% of heads"),
    (1.26, "points", True, "+1.26 points"), (None, "points", False, "—"),
])
def test_units_render_once(value, unit, signed, text):
    assert fmt(value, unit, signed) == text


def test_malformed_reference_is_a_clear_error(fake_repo, capsys):
    rep = load_replication(REPLICATION)
    write_stage_metrics(fake_repo, "smoke", published_values(fake_repo), [])
    path = freeze(rep, "smoke")
    path.write_text("{not json")
    assert main(["check", "--profile", "smoke"]) == 2
    assert "reference/smoke.json: not valid JSON" in capsys.readouterr().err


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
