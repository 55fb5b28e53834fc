"""``results/REPORT.md``: one claims table first (one row per claim), then per replication the
claims at every profile with results, the health floors, and each stage's table and plots."""
from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path

from acbench import paths
from acbench.config import Claim, Replication
from acbench.report.floors import evaluate_floor
from acbench.report.verdict import (NO_ITEMS, NOT_TESTABLE, ClaimResult, deciding_profile, judge,
                                    profiles_with_results)
from acbench.results import METRICS_FILE, ResultsError, read_metrics
from acbench.stats import CONTRADICTED, INCONCLUSIVE, SUPPORTED

VERDICT_MARK = {SUPPORTED: "✅ supported", CONTRADICTED: "❌ contradicted", INCONCLUSIVE: "❔ inconclusive",
                NOT_TESTABLE: "➖ not testable at this profile"}


def fmt(value: float | None, unit: str, signed: bool = False) -> str:
    """A number in its unit: ``18.70%``, ``40.00% of heads``, ``0.83 points``, ``+1.26 points``."""
    if value is None:
        return "—"
    number = f"{value:+.2f}" if signed else f"{value:.2f}"
    unit = unit.strip()
    return f"{number}{unit}" if unit.startswith("%") else f"{number} {unit}".strip()


def estimate_cell(r: ClaimResult) -> str:
    if r.estimate is None:
        return "—"
    value = fmt(r.estimate, r.claim.unit)
    if r.low is None:
        return f"{value} (no interval)"
    if r.method.startswith("exact"):
        return f"{value} (exact)"
    return f"{value} [{r.low:.2f}, {r.high:.2f}]"


def threshold_cell(claim: Claim) -> str:
    lower, upper = claim.bounds
    if claim.direction == "match":
        return f"{fmt(lower, claim.unit)} … {fmt(upper, claim.unit)}"
    return f"≥ {fmt(lower, claim.unit)}" if math.isfinite(lower) else f"≤ {fmt(upper, claim.unit)}"


def mde_cell(r: ClaimResult) -> str:
    if r.mde is None:
        return "—"
    return "∞ (cannot detect)" if math.isinf(r.mde) else f"{r.mde:.2f} points"


def verdict_cell(r: ClaimResult) -> str:
    mark = VERDICT_MARK[r.verdict]
    return f"{mark} ({NO_ITEMS})" if r.reason == NO_ITEMS else mark


def reason_cell(r: ClaimResult) -> str:
    if r.reason == NO_ITEMS:
        return "point value only: the stage ran before per-item records were kept (re-run it for an interval)"
    return r.reason.replace("|", "\\|").replace("\n", " ")


def headline(replications: list[Replication]) -> tuple[list[ClaimResult], list[str]]:
    """One result per claim, at its deciding profile, and the table's lines."""
    results = [judge(rep, c, deciding_profile(rep, c)) for rep in replications for c in rep.published.claims]
    lines = ["| claim | verdict | estimate [95% CI] | threshold | MDE | reason |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| `{r.claim.id}` ({r.replication}, {r.profile}) | {verdict_cell(r)} | {estimate_cell(r)} | "
                     f"{threshold_cell(r.claim)} | {mde_cell(r)} | {reason_cell(r)} |")
    return results, lines


def summary(results: list[ClaimResult]) -> str:
    counts = Counter(r.verdict for r in results)
    no_items = sum(r.reason == NO_ITEMS for r in results)
    return (f"{len(results)} claims: {counts[SUPPORTED]} supported, {counts[CONTRADICTED]} contradicted, "
            f"{counts[INCONCLUSIVE]} inconclusive ({no_items} of them for lack of per-item data), "
            f"{counts[NOT_TESTABLE]} not testable at their profile.")


def stages_without_provenance(rep: Replication, profile: str) -> list[str]:
    """Stages whose ``metrics.json`` at ``profile`` exists but carries no provenance (written before run keys)."""
    out = []
    for stage in rep.params.stages:
        path = paths.stage_dir(profile, rep.name, stage) / METRICS_FILE
        try:
            if path.is_file() and "provenance" not in read_metrics(path)["meta"]:
                out.append(stage)
        except ResultsError:
            continue
    return out


def replication_section(rep: Replication, report_dir: Path) -> str:
    profiles = profiles_with_results(rep) or [deciding_profile(rep, rep.published.claims[0])]
    lines = [f"## `{rep.name}` — {rep.published.paper}: {rep.published.title}", "",
             "| claim | profile | published | estimate [95% CI] | threshold | MDE | verdict | reason |",
             "|---|---|---|---|---|---|---|---|"]
    for claim in rep.published.claims:
        for profile in profiles:
            r = judge(rep, claim, profile)
            lines.append(f"| `{claim.id}`: {claim.metric} | {profile} | {fmt(claim.value, claim.unit)} | "
                         f"{estimate_cell(r)} | {threshold_cell(claim)} | {mde_cell(r)} | {verdict_cell(r)} | "
                         f"{reason_cell(r)} |")
    lines += ["", "**Claims, comparators and tolerances.**"]
    for c in rep.published.claims:
        how = ""
        if c.compare is not None:
            conds = ", ".join(f"{k} = {v.stage}:{v.run}" for k, v in
                              (("a", c.compare.a), ("b", c.compare.b), ("reference", c.compare.reference)) if v)
            pairs = "; ".join(f"{a.stage}:{a.run} − {b.stage}:{b.run}" for a, b in c.compare.pairs or [])
            how = f" Estimate: {c.compare.statistic} ({conds or pairs})."
        design = ""
        if c.design is not None:
            design = f" MDE design: disagreement {c.design.disagreement:g} ({c.design.basis})."
        lines.append(f"- `{c.id}` — {c.claim} *Source: {c.where}.*{how} Tolerance: {c.tolerance_reason}{design}")
    if rep.published.floors:
        lines += ["", "**Health floors** (a failed floor makes its claims *not testable*):", "",
                  "| floor | profile | status | measured |", "|---|---|---|---|"]
        for floor in rep.published.floors:
            for profile in profiles:
                s = evaluate_floor(profile, rep, floor)
                status = {True: "passed", False: "**failed**", None: "not evaluated"}[s.passed]
                lines.append(f"| `{floor.id}`: {floor.what} | {profile} | {status} | {s.text} |")
    lines.append("")
    readme = rep.folder / "README.md"
    if readme.is_file():
        lines += [f"Why our numbers differ where they do: [{rep.name}/README.md]"
                  f"({os.path.relpath(readme, report_dir)}).", ""]
    for profile in profiles_with_results(rep):
        unkeyed = stages_without_provenance(rep, profile)
        if unkeyed:
            lines += [f"Results at profile `{profile}` produced before provenance keys (no `meta.provenance`; "
                      f"not traceable to the code and data beside them until re-run): "
                      + ", ".join(f"`{s}`" for s in unkeyed) + ".", ""]
        for stage in rep.params.stages:
            stage_dir = paths.stage_dir(profile, rep.name, stage)
            table = stage_dir / "table.md"
            if not table.is_file():
                continue
            lines += [f"### Stage `{stage}`, profile `{profile}`", "", table.read_text(encoding="utf-8").strip(), ""]
            for png in sorted(stage_dir.glob("*.png")):
                lines += [f"![{stage} ({profile})]({os.path.relpath(png, report_dir)})", ""]
    return "\n".join(lines)


def build_report(replications: list[Replication], out: Path) -> str:
    results, table = headline(replications)
    head = [
        "# Replication report", "",
        "Generated by `acbench report` (the `report` stage of `dvc repro`) from `results/<profile>/`; do not "
        "edit by hand. One row per published claim, at the most capable profile that can check it and has run. "
        "Estimates carry a paired 95% bootstrap interval over items and seeds from the saved per-item records; "
        "*supported* / *contradicted* when the interval lies on one side of the threshold (inside / outside the "
        "band for `match` claims), *inconclusive* when it spans it; *not testable* when the profile cannot "
        "check the claim, its stage has not run or a health floor failed. MDE: the smallest paired difference "
        "the profile's design detects with 80% power at α = 0.05.", "",
        summary(results), "", *table, "",
    ]
    sections = [replication_section(rep, out.parent) for rep in replications]
    return "\n".join(head + sections).rstrip() + "\n"
