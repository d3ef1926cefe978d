"""The ``migrate`` command: a thin layer over the library.

Exit codes: 0 done · 1 error · 2 plan or usage error · 3 validation found differences ·
4 another run holds the lock · 5 interrupted or partly done, safe to rerun.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import traceback
from typing import Any

from rich.console import Console

from migrate import __version__
from migrate.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PLAN,
    MigrateError,
    PlanError,
)
from migrate.plan import Plan, load_plan, redact

EPILOG = """exit codes: 0 done, 1 error, 2 plan or usage error, 3 validation found
differences, 4 another run holds the lock, 5 interrupted or partly done (safe to rerun)"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors exit 2 with one line
        self.print_usage(sys.stderr)
        print(f"migrate: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_PLAN)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="migrate",
        description="Move databases to the cloud from one plan file, with counts to trust.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"migrate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser(
        "run",
        help="run a plan (or show what it would do with --dry-run)",
        description="Run a plan: copy every step, resuming where an earlier run stopped.",
        epilog="example: migrate run plans/demo.toml\n         migrate run plan.toml"
        " --dry-run\n\n" + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("plan", help="the plan file (TOML)")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the order of waves and what each step would do; write nothing",
    )
    run.add_argument(
        "--step",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this step (repeatable)",
    )
    run.add_argument(
        "--restart",
        action="store_true",
        help="forget earlier progress of the selected steps and copy again",
    )
    run.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    run.add_argument("--quiet", action="store_true", help="no progress output")

    status = sub.add_parser(
        "status",
        help="show progress per step and table",
        description="Show, per step and table, rows copied, chunks done and left, and the"
        " last error.",
        epilog="example: migrate status plans/demo.toml --json\n\n" + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("plan", help="the plan file (TOML)")
    status.add_argument("--json", action="store_true", help="print JSON on stdout")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stdout = Console(soft_wrap=True)
    if not stdout.is_terminal:  # files and cron mail: wide enough for the tables
        stdout = Console(soft_wrap=True, width=160)
    stderr = Console(stderr=True, soft_wrap=True)
    plan: Plan | None = None
    try:
        plan = load_plan(args.plan)
        if args.command == "run":
            return _run(args, plan, stdout, stderr)
        return _status(args, plan, stdout)
    except MigrateError as exc:
        text = redact(str(exc), plan.secrets) if plan else str(exc)
        print(f"migrate: error: {text}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("migrate: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # a bug: show it, without secrets
        text = traceback.format_exc()
        print(redact(text, plan.secrets) if plan else text, file=sys.stderr, end="")
        print("migrate: internal error (a bug); the state is safe to rerun from", file=sys.stderr)
        return EXIT_ERROR


def _run(args: argparse.Namespace, plan: Plan, stdout: Console, stderr: Console) -> int:
    from migrate.dryrun import dry_run, print_dry_run

    unknown = [s for s in args.step if s not in {st.name for st in plan.steps}]
    if unknown:
        raise PlanError(
            f"--step {unknown[0]}: no such step in {args.plan}"
            f" (steps: {', '.join(s.name for s in plan.steps)})"
        )
    if args.dry_run:
        report = dry_run(plan)
        if args.json:
            print(json.dumps(report, indent=2, ensure_ascii=False))
        else:
            print_dry_run(stdout, report)
        return EXIT_PLAN if report["problems"] else EXIT_OK

    from migrate.progress import LogProgress, QuietProgress, RichProgressDisplay
    from migrate.report import print_run, run_to_json
    from migrate.runner import Runner
    from migrate.state import RunLock, State

    lock = RunLock(plan.state_path)
    lock.acquire()
    state = State(plan.state_path, plan.name)
    progress: Any
    if args.quiet or args.json:
        progress = QuietProgress()
    elif stderr.is_terminal:
        progress = RichProgressDisplay(stderr)
    else:
        progress = LogProgress()
    runner = Runner(plan, state, progress, restart=args.restart, only_steps=tuple(args.step))
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if isinstance(progress, RichProgressDisplay):
            with progress:
                result = runner.run(shlex.join(sys.argv))
        else:
            result = runner.run(shlex.join(sys.argv))
    finally:
        signal.signal(signal.SIGTERM, previous)
        state.close()
        lock.release()
    if args.json:
        print(json.dumps(run_to_json(result), indent=2, ensure_ascii=False, default=str))
    else:
        print_run(stdout, result)
    return result.exit_code


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _status(args: argparse.Namespace, plan: Plan, stdout: Console) -> int:
    from migrate.report import print_status, status_rows
    from migrate.state import State

    state = State(plan.state_path, plan.name, create=False)
    try:
        run = state.last_run()
        rows = status_rows(state, {s.name: s.chunk_rows for s in plan.steps})
    finally:
        state.close()
    if args.json:
        print(
            json.dumps(
                {"plan": plan.name, "last_run": dict(run) if run else None, "tables": rows},
                indent=2,
                ensure_ascii=False,
                default=str,
            )
        )
    else:
        print_status(stdout, run, rows)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
