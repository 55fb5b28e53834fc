"""Command line: ``acbench <command>``. ``acbench --help`` and ``acbench <command> --help`` explain each."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from acbench import paths
from acbench.config import default_profile, list_replications, load_replication
from acbench.errors import EXIT_CHECK_FAILED, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK
from acbench.failures import describe

DEBUG_ENV = "ACBENCH_DEBUG"

EPILOG = """\
typical use:
  acbench list                                   replications, their stages and published claims
  acbench run dynamic_head_pruning_kd            every stage of one replication at the default profile
  acbench run dynamic_head_pruning_kd --stage efficiency --profile smoke
  acbench run dynamic_head_pruning_kd --stage asdiv_r10 --stage asdiv_r20   several stages, in order, one process
  acbench report                                 write results/REPORT.md
  acbench check --profile smoke                  exit 1 when a verdict or metric moved from the committed one
  acbench check --profile cpu --strict           ... and when a claim checkable at cpu is not supported
  acbench pipeline                               write dvc.yaml from the replication folders (--check: compare)
  acbench new my_paper [--from uhkd]             a new replication folder that runs at smoke at once
  dvc repro                                      the whole pipeline at the profile in params.yaml

exit codes:
  0    success (for check: every gate passed)
  1    check failed: a result left its tolerance or the committed reference (names the claim)
  2    error: bad config, missing or damaged data, checkpoint or results, a missing upstream stage,
       divergence, an unwritable folder, a stage locked by another run (one line names file/stage and fix)
  3    unexpected internal error (a bug): rerun with --debug or {env}=1 for the traceback
  130  interrupted (Ctrl-C)
""".format(env=DEBUG_ENV)


def _replications(names: list[str] | None):
    """The replications named (default: all), their stage configs not validated: commands that
    need no model must not import the experiments (and torch); ``run`` validates what it runs."""
    names = names or list_replications()
    return [load_replication(n, validate_stages=False) for n in names]


def cmd_list(args: argparse.Namespace) -> int:
    from acbench.report.verdict import claim_mde

    for rep in _replications(args.replications):
        print(f"{rep.name}  ({rep.published.paper}: {rep.published.title})")
        print("  stages: " + ", ".join(f"{s} -> {e}" for s, e in rep.params.stages.items()))
        for c in rep.published.claims:
            source = f"{c.result.stage}:{c.result.key}" if c.result else "no stage yet"
            if c.compare is not None:
                source = f"{c.compare.statistic} of " + ", ".join(f"{x.stage}:{x.run}" for x in c.compare.conditions())
            value = f"{c.value:g}{c.unit}" if c.unit.startswith("%") else f"{c.value:g} {c.unit}"
            print(f"  - {c.id}: {value} {c.metric} [{c.direction}, tol {c.tolerance:g}; "
                  f"checkable at {', '.join(c.profiles)}; {source}]")
            if c.design is not None:
                mdes = []
                for profile in paths.PROFILES:
                    mde = claim_mde(c, profile)
                    if mde is not None:
                        at = c.design.at[profile]
                        shown = "undetectable" if mde == float("inf") else f"{mde:.2f} points"
                        mdes.append(f"{profile} {shown} ({at.items} items x {at.seeds} seeds x {at.folds} folds)")
                print(f"      MDE (80% power, alpha 0.05, disagreement {c.design.disagreement:g}): " + "; ".join(mdes))
            else:
                print("      MDE: — (not a paired accuracy difference)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from acbench.runner import run_stages

    rep = load_replication(args.replication)
    run_stages(rep, args.stage or list(rep.params.stages), args.profile or default_profile())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from acbench.report.markdown import build_report
    from acbench.report.plots import draw_plots
    from acbench.results import write_text_atomic

    out = Path(args.out) if args.out else paths.results_dir() / "REPORT.md"
    replications = _replications(args.replications)
    for path in draw_plots(replications, args.profile or default_profile()):
        print(f"[acbench] drew {path}", file=sys.stderr)
    write_text_atomic(out, build_report(replications, out))
    print(f"[acbench] wrote {out}", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from acbench.report.check import check, format_outcome

    profile = args.profile or default_profile()
    outcome = check(_replications(args.replications), profile, strict=args.strict)
    print(format_outcome(outcome, profile))
    return EXIT_OK if outcome.ok else EXIT_CHECK_FAILED


def cmd_reference(args: argparse.Namespace) -> int:
    from acbench.report.reference import freeze
    from acbench.report.verdict_record import freeze_verdicts

    for rep in _replications(args.replications):
        print(f"[acbench] wrote {freeze(rep, args.profile)}", file=sys.stderr)
        print(f"[acbench] wrote {freeze_verdicts(rep, args.profile)}", file=sys.stderr)
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from acbench.scaffold import new_replication

    _, todo = new_replication(args.name, args.source)
    print(todo)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from acbench.data import DataError, get_declaration, list_datasets

    if args.action == "list":
        for name in args.names or list_datasets():
            decl = get_declaration(name)
            splits = ", ".join(f"{split} {spec.sizes[0]:,}" for split, spec in decl.splits.items())
            folds = f"; {decl.fold_count} cross-validation folds" if decl.fold_count else ""
            print(f"{name}: {decl.title}\n  licence: {decl.licence}\n  splits: {splits}{folds}")
        return EXIT_OK
    from acbench.data.verify import report, verify

    result = verify(args.names, args.root)
    print("\n".join(report(result)))
    if result.damaged:
        return EXIT_ERROR
    if args.names and result.absent:  # datasets asked for by name must be there
        first = next(iter(result.absent.values()))[0]
        raise DataError(f"{result.root.path / first}: missing (asked for by name); place it there, point "
                        f"ACBENCH_DATA_ROOT at a complete mirror, or pass --root")
    if not result.present:
        raise DataError(f"{result.root.path}: no declared file is present under this data root; point "
                        f"ACBENCH_DATA_ROOT (or --root) at the data mirror")
    return EXIT_OK


def cmd_pipeline(args: argparse.Namespace) -> int:
    from acbench import pipeline

    if not args.check:
        print(f"[acbench] wrote {pipeline.write()}", file=sys.stderr)
        return 0
    problems = pipeline.check()
    for line in problems:
        print(f"acbench: {pipeline.pipeline_path().name}: {line}", file=sys.stderr)
    if problems:
        print("acbench: run `acbench pipeline` to rewrite dvc.yaml from the replication folders", file=sys.stderr)
        return 1
    print(f"[acbench] {pipeline.pipeline_path().name} is what the replication folders make", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acbench", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Replication harness for attention-centric model compression: run replications, "
                    "write the report that sets reproduced numbers beside published ones, and check them.")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the full traceback of an error (also: {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    profile_help = "smoke | cpu | paper (default: `profile` in params.yaml)"

    p = sub.add_parser("list", help="list replications, their stages and their published claims")
    p.add_argument("replications", nargs="*", help="names (default: all)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run every stage of one replication, or one stage")
    p.add_argument("replication")
    p.add_argument("--stage", action="append", help="run only this stage (repeat for several, run in the "
                   "order given in one process: the pipeline groups short stages so each group pays the "
                   "torch/transformers import once)")
    p.add_argument("--profile", choices=paths.PROFILES, help=profile_help)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="write results/REPORT.md: published vs reproduced, per claim and profile")
    p.add_argument("replications", nargs="*", help="names (default: all)")
    p.add_argument("--out", help="output file (default: results/REPORT.md)")
    p.add_argument("--profile", choices=paths.PROFILES,
                   help="profile whose plots are (re)drawn; " + profile_help)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("check", help="exit 1 when a claim's verdict or estimate differs from the committed "
                                     "verdict record beyond its tolerance, or a deterministic metric from the "
                                     "committed reference")
    p.add_argument("replications", nargs="*", help="names (default: all)")
    p.add_argument("--profile", choices=paths.PROFILES, help=profile_help)
    p.add_argument("--strict", action="store_true", help="also fail on any claim checkable at the profile "
                   "that is not 'supported'")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("reference", help="freeze the deterministic metrics and the claims' verdicts of the "
                                         "current results as the committed reference of a profile (the smoke "
                                         "regression gate)")
    p.add_argument("replications", nargs="*", help="names (default: all)")
    p.add_argument("--profile", choices=paths.PROFILES, default="smoke")
    p.set_defaults(func=cmd_reference)

    p = sub.add_parser("pipeline", help="write dvc.yaml from the replication folders (stages, deps from each "
                                        "stage's import closure, params, outputs, the report)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 naming each stage where the "
                   "committed dvc.yaml differs from what the folders make")
    p.set_defaults(func=cmd_pipeline)

    p = sub.add_parser("new", help="write a new replication folder that runs at smoke at once, and print what "
                                   "to fill in")
    p.add_argument("name", help="folder name under replications/ (lower-case letters, digits, '_')")
    p.add_argument("--from", dest="source", metavar="EXISTING",
                   help="copy params.yaml, published.yaml and stages/ of this replication (default: a CIFAR "
                        "distillation study built from the engine experiments)")
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("data", help="list datasets, or verify their files (checksums) under a root: every "
                                    "present file is checked, absent ones are listed apart; exit 0 only when "
                                    "every present file is intact")
    p.add_argument("action", choices=["list", "verify"])
    p.add_argument("names", nargs="*", help="dataset or checkpoint declaration names, e.g. math23k, "
                                            "resnet_cifar10 (default: all; verify fails if a named one is absent)")
    p.add_argument("--root", help="mirror root (default: $ACBENCH_DATA_ROOT, else download)")
    p.set_defaults(func=cmd_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("acbench: interrupted (Ctrl-C); committed results are as they were, and a re-run resumes "
              "from the last checkpoint", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # every failure becomes one line (the traceback with --debug)
        if debug:
            import traceback

            traceback.print_exc()
        message, internal = describe(exc)
        if internal and not debug:
            message += f" (rerun with --debug or {DEBUG_ENV}=1 for the traceback)"
        print(f"acbench: {message}", file=sys.stderr)
        return 3 if internal else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
