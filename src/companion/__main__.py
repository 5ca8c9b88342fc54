"""``python -m companion``: the command line.

    python -m companion assignments --out DIR [--solutions] [--format notebooks|otter]
    python -m companion simulate --scenario NAME --reps N --out FILE [--workers K]
                                 [--scheduler ADDRESS] [--seed S] [--methods M,M,...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion",
                                     description="Mixed Models Companion tools")
    commands = parser.add_subparsers(dest="command", required=True)
    assign = commands.add_parser("assignments", help="write the exercises as notebooks")
    assign.add_argument("--out", type=Path, required=True, help="folder for the notebooks")
    assign.add_argument("--solutions", action="store_true",
                        help="the teacher's version, with the worked solutions")
    assign.add_argument("--format", choices=("notebooks", "otter"), default="notebooks",
                        help="notebooks (default): one notebook per exercise; otter: an "
                        "otter-grader master notebook per exercise (DIR/<page>/<page>.ipynb), "
                        "for `otter assign`")
    assign.add_argument("--language", choices=("en", "zh"), default="en",
                        help="en (default) or zh: the exercises of the Chinese edition")
    sim = commands.add_parser("simulate", help="run (or resume) a simulation study of the "
                              "GLMM fitting methods (companion.study)")
    sim.add_argument("--scenario", required=True,
                     help="the design: 'chapter' (section 8.4) or 'binary-small'")
    sim.add_argument("--reps", type=int, required=True, help="replicates in all")
    sim.add_argument("--out", type=Path, required=True,
                     help="results file (.parquet, .csv, .csv.gz or .pkl); an existing one "
                     "is resumed; FILE.json records how it was made")
    sim.add_argument("--workers", type=int, default=1, help="local processes (joblib)")
    sim.add_argument("--scheduler", default=None,
                     help="a Dask scheduler address, tcp://host:port (instead of --workers)")
    sim.add_argument("--seed", type=int, default=2023, help="the master seed")
    sim.add_argument("--methods", default=None,
                     help="comma-separated subset of laplace,aghq,pql,reml,gee,inla")
    sim.add_argument("--batch-size", type=int, default=None,
                     help="replicates between two saves of the file")
    sim.add_argument("--no-progress", action="store_true", help="no progress bar")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.command == "simulate":
        return _simulate(args, argv)
    if args.command == "assignments":
        if args.format == "otter":
            if args.solutions:
                parser.error("--solutions applies to --format notebooks: the otter-grader "
                             "master notebooks always hold the solutions")
            return _otter(args.out, args.language)
        from companion.classroom.assignments import write_assignments

        try:
            paths = write_assignments(args.out, solutions=args.solutions,
                                      language=args.language)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        kind = "with solutions" if args.solutions else "without solutions"
        print(f"wrote {len(paths)} notebooks {kind} to {args.out}:")
        for path in paths:
            print(f"  {path.name}")
    return 0


def _otter(out: Path, language: str) -> int:
    from companion.classroom.otter_assignments import write_otter_sources

    try:
        paths = write_otter_sources(out, language=language)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {len(paths)} otter-grader master notebooks to {out}:")
    for path in paths:
        print(f"  {path.relative_to(out)}")
    print(f"next: otter assign {out}/<page>/<page>.ipynb {out}/<page>/dist")
    return 0


def _simulate(args, argv: list[str]) -> int:
    import shlex
    import time

    from companion.study.runner import METHODS, run_study, summarise, timing
    from companion.study.record import write_record

    methods = args.methods or METHODS
    started = time.perf_counter()
    try:
        results = run_study(args.scenario, args.reps, seed=args.seed, methods=methods,
                            workers=args.workers, scheduler=args.scheduler, out=args.out,
                            batch_size=args.batch_size, progress=not args.no_progress)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    record = write_record(args.out, command=shlex.join(["python", "-m", "companion", *argv]),
                          scenario=args.scenario, reps=args.reps, seed=args.seed,
                          methods=list(dict.fromkeys(results["method"])),
                          workers=args.workers, seconds=time.perf_counter() - started)
    import pandas as pd

    table = summarise(results)
    columns = ["method", "parameter", "truth", "bias", "bias_mcse", "rmse", "coverage",
               "coverage_mcse", "n_failed", "seconds_per_fit"]
    with pd.option_context("display.width", 140, "display.max_columns", 20):
        print(table[columns].round(4).to_string(index=False))
        print()
        print(timing(results).round(4).to_string(index=False))
    print(f"\n{results['rep'].nunique()} replicates in {args.out}; how they were made: "
          f"{record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
