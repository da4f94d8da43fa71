"""The ``dse`` command line.

Why argparse: no extra dependency, and subcommand ``--help`` pages can carry
worked examples (``epilog``) — the help is meant to teach the tool.
Every user mistake ends in one line ``error: ...`` (red on a terminal) and exit
code 2; nothing recorded is touched by a failed command. Exit codes (:data:`EXIT_CODES`,
also in ``dse --help``): 0 success, 1 runtime failure (a store or server that cannot be
reached, a full disk, no design succeeded), 2 bad input, 130 interrupted; a closed pipe
(``dse pareto ... | head``) ends quietly with 141 as a program killed by SIGPIPE would.
No command prints a Python traceback; ``DSE_DEBUG=1`` shows it for a bug report.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from dse.locations import check_output
from dse.spec import SpecError, parse_duration
from search_spaces.expressions import ExpressionError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_PIPE = 0, 1, 2, 130, 141
EXIT_CODES = """exit codes:
  0 success   1 runtime failure (store or server unreachable, disk, no design succeeded)
  2 bad input (study file, flags, paths)   130 interrupted (Ctrl-C; recorded results kept)
  141 output pipe closed (e.g. | head)"""

_EXAMPLES_RUN = """examples:
  dse run studies/quickstart.yaml               # CIM co-design on digits, report at the end
  dse run studies/zdt1.yaml --runner serial     # engine check on a benchmark problem
  dse run studies/zdt1.yaml --evaluations 500 --time 2m
  dse run studies/cluster_sweep.yaml --runner ray --address auto   # join a running Ray cluster
"""
_EXAMPLES_PARETO = """examples:
  dse pareto runs/zdt1                                   # readable table of the front
  dse pareto runs/zdt1 --where "f1 < 0.5" --format csv   # filter (safe expressions only)
  dse pareto runs/quickstart --objectives accuracy_p5,energy_nj --knee
  dse pareto runs/quickstart --where "hw.device in ['reram', 'pcm'] and hw.adc_bits <= 6"
filters: names (dotted ok), numbers, strings, lists, < <= > >= == != in, not in, and/or/not, + - * /
"""
_EXAMPLES_EXPORT = """examples:
  dse export runs/zdt1 --parquet out.parquet             # every design, typed columns, for pandas
  dse export runs/zdt1 --optuna sqlite:///zdt1-optuna.db # then: optuna-dashboard sqlite:///zdt1-optuna.db
"""
_EXAMPLES_STATUS = """examples:
  dse status runs/zdt1                    # counts, budget left, best hypervolume
  dse status postgresql://me@db-host/dse  # a study stored on a PostgreSQL server
"""
_EXAMPLES_REPORT = """examples:
  dse report runs/quickstart                    # runs/quickstart/report/report.html
  dse report runs/quickstart --out /tmp/qs-report
"""
_EXAMPLES_SWEEP = """examples:
  dse sweep studies/cluster_sweep.yaml --time-budget 2h --samples 500 --max-concurrent 32
  dse sweep studies/cluster_sweep.yaml --address auto --resume    # continue an interrupted sweep
"""


def _color(text: str, code: str) -> str:
    return f"\033[{code}m{text}\033[0m" if sys.stderr.isatty() else text


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(_color("error: ", "1;31") + message, file=sys.stderr)
    return code


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line errors: ``error: dse run: ...; see 'dse run --help'``."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        _fail(f"{self.prog}: {message}; see '{self.prog} --help'")
        raise SystemExit(EXIT_USAGE)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if getattr(args, "runner", None):
        out["runner.kind"] = args.runner
    if getattr(args, "workers", None):
        out["runner.workers"] = args.workers
    if getattr(args, "address", None):
        out["runner.address"] = args.address
        out.setdefault("runner.kind", "ray")
    if getattr(args, "evaluations", None):
        out["budget.evaluations"] = args.evaluations
    if getattr(args, "time", None):
        out["budget.time"] = args.time
    if getattr(args, "seed", None) is not None:
        out["seed"] = args.seed
    if getattr(args, "storage", None):
        out["storage"] = args.storage
    return out


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _name_list(text: str) -> list[str]:
    """A comma-separated list of names; an empty list or an empty name is an error (an
    empty ``--objectives ''`` silently meaning "all" hid typos in scripts)."""
    names = [n.strip() for n in text.split(",")]
    if not text.strip() or any(not n for n in names):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of names; allowed: names separated by commas, e.g. f1,f2"
        )
    return names


def _duration(text: str) -> str:
    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runner", choices=["serial", "ray"], help="override runner.kind")
    p.add_argument("--workers", type=_positive_int, help="local Ray workers (default: all cores)")
    p.add_argument(
        "--address",
        help="join a Ray cluster: 'auto' or host:port (ray://host:port needs ray[client])",
    )
    p.add_argument("--evaluations", type=_positive_int, help="override budget.evaluations")
    p.add_argument("--time", type=_duration, help="override budget.time, e.g. 10m, 2h")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-report", action="store_true", help="do not write the HTML report at the end"
    )
    p.add_argument(
        "--wide", action="store_true", help="print every column of the front, however wide"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dse",
        description=(
            "cim-dse: multi-objective design-space exploration of DNNs on analog "
            "compute-in-memory chips. A study file names the search space, the objectives, "
            "the optimizer and the budget; results land in runs/<study>/."
        ),
        epilog="start here:  dse run studies/quickstart.yaml   then   dse pareto runs/quickstart"
        "\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from dse import __version__

    parser.add_argument("--version", action="version", version=f"cim-dse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.set_defaults(_commands=sub.choices)
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser(
        "run",
        help="run a study file to its budget",
        description="Validate the study file, then search until its budget is spent; prints "
        "the Pareto front and writes the HTML report into runs/<study>/.",
        epilog=_EXAMPLES_RUN,
        formatter_class=fmt,
    )
    p.add_argument("study", type=Path, help="study YAML file")
    p.add_argument(
        "--runs-dir", type=Path, default=Path("runs"), help="parent of study directories"
    )
    p.add_argument("--seed", type=int, help="override the study seed")
    p.add_argument("--storage", help="override storage (file path or SQLAlchemy URL)")
    _add_run_flags(p)

    p = sub.add_parser(
        "resume",
        help="continue a study after a crash or kill -9",
        description="Re-queues designs left running, finishes them, then continues the optimizer from the record.",
        epilog="examples:\n  dse resume runs/zdt1\n  dse resume runs/zdt1 --evaluations 4000   # extend the budget\n",
        formatter_class=fmt,
    )
    p.add_argument("study_dir", type=Path)
    _add_run_flags(p)

    p = sub.add_parser(
        "status",
        help="counts by status, best hypervolume, budget left",
        description="How far a study has come: designs by status, budget and time left, the "
        "best hypervolume and its reference point. Read-only; safe while a run is going.",
        epilog=_EXAMPLES_STATUS,
        formatter_class=fmt,
    )
    p.add_argument("study_dir", type=Path, help="study directory, store file or database URL")

    p = sub.add_parser(
        "pareto",
        help="Pareto-optimal designs",
        description="The feasible, non-dominated done designs, optionally over a subset of the "
        "objectives and filtered; every searched param is a column.",
        epilog=_EXAMPLES_PARETO,
        formatter_class=fmt,
    )
    p.add_argument("study_dir", type=Path, help="study directory, store file or database URL")
    p.add_argument(
        "--objectives", type=_name_list, help="comma-separated subset of the study objectives"
    )
    p.add_argument("--where", help='filter expression, e.g. "f1 < 0.5 and hw.adc_bits >= 4"')
    p.add_argument("--format", choices=["table", "csv", "json", "parquet"], default="table")
    p.add_argument("--output", "-o", type=Path, help="write to a file (required for parquet)")
    p.add_argument("--knee", action="store_true", help="print only the knee point of the front")
    p.add_argument("--all-columns", action="store_true", help="include bookkeeping columns")

    p = sub.add_parser(
        "export",
        help="export to Parquet or an Optuna storage",
        description="Every design with typed columns to Parquet, and/or the finished designs "
        "as trials of an Optuna study (for optuna-dashboard).",
        epilog=_EXAMPLES_EXPORT,
        formatter_class=fmt,
    )
    p.add_argument("study_dir", type=Path, help="study directory, store file or database URL")
    p.add_argument("--parquet", type=Path, help="write every design to this Parquet file")
    p.add_argument("--optuna", help="SQLAlchemy URL of an Optuna storage to write the study into")
    p.add_argument("--study-name", help="Optuna study name (default: the study's name)")
    p.add_argument(
        "--if-exists",
        choices=["error", "append", "replace"],
        default="error",
        help="when the Optuna study exists: error (default), append new designs, or replace it",
    )

    p = sub.add_parser(
        "report",
        help="write the HTML report with plots",
        description="Write the study's HTML report (front, trade-off plots, hypervolume over "
        "time, failures) with its PNGs; works offline.",
        epilog=_EXAMPLES_REPORT,
        formatter_class=fmt,
    )
    p.add_argument("study_dir", type=Path, help="study directory, store file or database URL")
    p.add_argument("--out", type=Path, help="output directory (default: <study_dir>/report)")

    p = sub.add_parser(
        "sweep",
        help="budgeted Ray Tune sweep into the study's store",
        description="Run the study's space as a Ray Tune sweep (Optuna search, optional "
        "multi-objective successive halving) under a wall-time and trial budget; results go "
        "to the same store as 'dse run'.",
        epilog=_EXAMPLES_SWEEP,
        formatter_class=fmt,
    )
    p.add_argument("study", type=Path)
    p.add_argument("--runs-dir", type=Path, default=Path("runs"))
    p.add_argument("--time-budget", type=_duration, help="wall-time budget, e.g. 2h")
    p.add_argument("--samples", type=_positive_int, help="number of trials (num_samples)")
    p.add_argument("--max-concurrent", type=_positive_int, help="max_concurrent_trials")
    p.add_argument(
        "--address", help="Ray cluster address ('auto' or host:port; ray:// needs ray[client])"
    )
    p.add_argument("--resume", action="store_true", help="restore an interrupted sweep")
    p.add_argument("--storage", help="override storage (file path or SQLAlchemy URL)")
    return parser


def _front_table(front: Any, spec: dict[str, Any], all_columns: bool) -> Any:
    if all_columns:
        return front
    objectives = list(spec.get("objectives", {}))
    params = list((spec.get("space") or {}).keys())
    from dse.store import META_COLUMNS

    skip = set(META_COLUMNS)
    param_cols = [
        c
        for c in front.columns
        if c not in skip and any(c == p or c.startswith(p + "_") for p in params)
    ]
    if not params:  # default space: show the design keys (namespaced) and objectives
        param_cols = [c for c in front.columns if c.split(".")[0] in {"dnn", "hw", "train"}]
    cols = ["design_id", *objectives, *[c for c in param_cols if c not in objectives]]
    return front[[c for c in cols if c in front.columns]]


def _fit_columns(table: Any, keep: int, width: int, rows: int | None) -> list[str]:
    """The leading columns of ``table`` whose rendering fits ``width`` characters; the
    first ``keep`` (id and objectives) always stay."""
    cols = list(table.columns)
    shown = cols[:keep]
    sample = table.head(rows) if rows else table
    for c in cols[keep:]:
        trial = sample[[*shown, c]].to_string(index=False).splitlines()
        if max((len(line) for line in trial), default=0) > width:
            break
        shown.append(c)
    return shown


def _print_front(view: Any, limit: int | None = 30, wide: bool = False) -> None:
    """The run's closing summary: the front, cut to the terminal width unless ``wide`` —
    and then naming every column left out, so no searched param disappears silently."""
    import shutil

    import pandas as pd

    front = view.pareto()
    if front.empty:
        print("no feasible done designs yet")
        return
    objectives = view.objectives
    front = front.sort_values(
        list(objectives)[0], ascending=objectives[list(objectives)[0]] == "min"
    )
    table = _front_table(front, view.spec, all_columns=False)
    print(
        f"Pareto front: {len(front)} designs ({', '.join(f'{k} {v}' for k, v in objectives.items())})"
    )
    with pd.option_context("display.precision", 4):
        left_out: list[str] = []
        if not wide:
            keep = 1 + sum(1 for o in objectives if o in table.columns)
            width = max(80, shutil.get_terminal_size((200, 24)).columns)
            shown = _fit_columns(table, keep, width, limit)
            left_out = [c for c in table.columns if c not in shown]
            table = table[shown]
        print(table.head(limit).to_string(index=False) if limit else table.to_string(index=False))
    if limit and len(front) > limit:
        print(f"... {len(front) - limit} more: dse pareto {view.study_dir or ''}")
    if left_out:
        print(
            f"columns left out to fit {width} characters (--wide prints them, so does "
            f"'dse pareto {view.study_dir or '<study>'}'): {', '.join(left_out)}"
        )


def _cmd_run(args: argparse.Namespace, resume: bool) -> int:
    import dse

    progress = not args.no_progress
    if resume:
        view = dse.resume(args.study_dir, overrides=_overrides(args), progress=progress)
    else:
        view = dse.run(
            args.study, runs_dir=args.runs_dir, overrides=_overrides(args), progress=progress
        )
    out = view.outcome
    assert out is not None
    common, n_common = _most_common_error(view)
    print(
        f"study {view.spec.get('name')}: {out.evaluated} done, {out.failed} failed, "
        f"{out.cache_hits} cache hits, stopped by {out.stopped_by} after {out.elapsed_s:.1f}s"
        + (f"; most common error ({n_common}x): {common}" if common else "")
    )
    target = view.study_dir or (args.study_dir if resume else args.study)
    if out.evaluated == 0 and out.failed > 0:
        # nothing succeeded: say why, and how to go on; never "unknown objective"
        return _fail(
            f"no design succeeded ({out.failed} failed, stopped by {out.stopped_by}): "
            f"{common}; fix it and run 'dse resume {target}' (recorded designs are kept)",
            code=1,
        )
    _print_front(view, wide=args.wide)
    if not args.no_report:
        path = view.report()
        print(f"report: {path}")
    return 0


def _most_common_error(view: Any) -> tuple[str | None, int]:
    """The error text failed designs share most often (first line), and how often."""
    frame = view.frame(status="failed")
    if frame.empty or "error" not in frame:
        return None, 0
    counts = frame["error"].fillna("").map(lambda e: str(e).strip().splitlines()[-1:] or [""])
    counts = counts.map(lambda lines: lines[0][:300]).value_counts()
    return str(counts.index[0]), int(counts.iloc[0])


def _cmd_status(args: argparse.Namespace) -> int:
    import dse

    view = dse.load(args.study_dir)
    spec = view.spec
    counts = view.store.counts()
    recorded = int(counts.get("done", 0)) + int(counts.get("failed", 0))
    print(f"study: {spec.get('name')}  evaluator: {spec.get('evaluator')}")
    print(
        "designs: "
        + ", ".join(f"{k} {int(counts.get(k, 0))}" for k in ("done", "failed", "running", "queued"))
    )
    budget = spec.get("budget", {})
    if budget.get("evaluations"):
        print(
            f"budget: {recorded}/{budget['evaluations']} evaluations, {budget['evaluations'] - recorded} left"
        )
    if budget.get("time"):
        used = float(view.store.get_meta("elapsed_s") or 0.0)
        print(
            f"time: {used:.0f}s used of {budget['time']:.0f}s, {max(0.0, budget['time'] - used):.0f}s left"
        )
    if counts.get("done"):
        hv = view.hypervolume()
        ref = ", ".join(f"{k} = {v:.6g}" for k, v in hv.ref_point.items())
        print(f"best hypervolume: {hv.value:.6g} (reference point {ref})")
        print(f"pareto-optimal designs: {len(view.pareto())}")
    return 0


def _cmd_pareto(args: argparse.Namespace) -> int:
    import dse

    if args.output:
        check_output(args.output, "--output")
    view = dse.load(args.study_dir)
    objectives = args.objectives
    front = view.pareto(objectives, where=args.where)
    if args.knee:
        from dse.query import knee_point

        objs = view._objectives(objectives)
        front = front if front.empty else knee_point(front, objs).to_frame().T
    table = _front_table(front, view.spec, args.all_columns)
    if args.format == "parquet":
        if not args.output:
            return _fail("--format parquet needs --output FILE.parquet")
        args.output.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(args.output, index=False)
        print(f"wrote {len(table)} designs to {args.output}")
        return 0
    if args.format == "csv":
        text = table.to_csv(index=False)
    elif args.format == "json":
        text = table.to_json(orient="records", indent=1)
    else:
        import pandas as pd

        with pd.option_context(
            "display.width", 200, "display.max_columns", 30, "display.precision", 4
        ):
            text = (
                table.to_string(index=False) if len(table) else "no matching Pareto-optimal designs"
            ) + "\n"
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"wrote {len(table)} designs to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    import dse
    from dse import export

    if not args.parquet and not args.optuna:
        return _fail("give --parquet FILE and/or --optuna URL")
    if args.parquet:
        check_output(args.parquet, "--parquet")
    view = dse.load(args.study_dir)
    if args.parquet:
        n = export.to_parquet(view.store, args.parquet)
        print(f"wrote {n if n is not None else ''} designs to {args.parquet}".replace("  ", " "))
    if args.optuna:
        export.to_optuna(
            view.store, args.optuna, study_name=args.study_name, if_exists=args.if_exists
        )
        print(f"wrote Optuna study {args.study_name or view.spec.get('name')!r} to {args.optuna}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import dse

    if args.out:
        check_output(args.out, "--out", kind="dir")
    view = dse.load(args.study_dir)
    print(f"report: {view.report(args.out)}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from dse.sweep import run_sweep_cli

    return run_sweep_cli(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the subcommand whose flags were wrong
        command = args._commands.get(args.command, parser)
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    started = time.time()
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return code
    except KeyboardInterrupt:
        print(
            f"\ninterrupted after {time.time() - started:.0f}s; everything recorded is kept — "
            "continue with 'dse resume <study_dir>'",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except BaseException as exc:  # noqa: BLE001 — the one place that turns errors into messages
        if isinstance(exc, SystemExit):
            raise
        return _report_error(exc)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in ("run", "resume"):
        return _cmd_run(args, resume=args.command == "resume")
    handler = {
        "status": _cmd_status,
        "pareto": _cmd_pareto,
        "export": _cmd_export,
        "report": _cmd_report,
        "sweep": _cmd_sweep,
    }[args.command]
    return handler(args)


def _quiet_broken_pipe() -> int:
    """The reader of our output went away (``| head``): stop without a word. stdout is
    pointed at /dev/null so the interpreter's final flush does not raise again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_PIPE


def _report_error(exc: BaseException) -> int:
    """One line for any failure, with the exit code of its kind (see :data:`EXIT_CODES`).

    Bad input (spec, expression, ``ValueError``) is 2; a store or server that cannot be
    reached, a file system error, memory or a bug is 1. ``DSE_DEBUG=1`` adds the traceback.
    """
    import os
    import traceback

    from dse.store import StoreUnavailable

    if os.environ.get("DSE_DEBUG"):
        traceback.print_exception(exc)
    if isinstance(exc, (SpecError, ExpressionError)):
        return _fail(str(exc))
    if isinstance(exc, StoreUnavailable):
        return _fail(str(exc), code=EXIT_FAILURE)
    if isinstance(exc, OSError):
        where = f" {exc.filename!r}" if exc.filename else ""
        return _fail(
            f"{exc.strerror or exc}{':' if where else ''}{where}; nothing more was written",
            code=EXIT_FAILURE,
        )
    if isinstance(exc, MemoryError):
        return _fail("out of memory; recorded results are kept", code=EXIT_FAILURE)
    if isinstance(exc, RecursionError):
        return _fail("input nested too deeply to process", code=EXIT_USAGE)
    if isinstance(exc, ValueError):
        return _fail(str(exc))
    try:
        import sqlalchemy as sa

        if isinstance(exc, sa.exc.SQLAlchemyError):
            cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            return _fail(f"database error: {cause}", code=EXIT_FAILURE)
    except ImportError:  # pragma: no cover — a dependency
        pass
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return _fail(
        f"internal error {type(exc).__name__}: {text} — please report it with the command; "
        "DSE_DEBUG=1 prints the traceback",
        code=EXIT_FAILURE,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
