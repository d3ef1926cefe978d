"""The ``migrate`` command: a thin layer over the library.

Exit codes: 0 done · 1 error · 2 plan or usage error · 3 validation found differences ·
4 another run holds the lock · 5 interrupted or partly done, safe to rerun.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import signal
import socket
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console

from migrate import __version__
from migrate.copier import Progress
from migrate.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PLAN,
    MigrateError,
    PlanError,
)
from migrate.plan import Plan, load_plan, redact
from migrate.progress import (
    LOG_FORMATS,
    LogProgress,
    QuietProgress,
    RichProgressDisplay,
    RunLog,
    TeeProgress,
)
from migrate.schedule import Every, crontab_lines, default_log_file, migrate_command, parse_every

EPILOG = """exit codes: 0 done, 1 error, 2 plan or usage error, 3 validation found
differences, 4 another run holds the lock, 5 interrupted or partly done (safe to rerun)"""

RUN_EPILOG = """examples:
  migrate run plans/demo.toml
  migrate run plan.toml --dry-run
  migrate run plan.toml --quiet --log-file /var/log/migrate/erp.log --log-format json
  migrate run plan.toml --log-format json        # JSON lines on stderr (systemd)

--log-file PATH appends the run's log to PATH (folders are created): a line per table
started and finished, a progress line per table at most every 15 s, messages, the
result, and any error that ends the command (a lock held, a plan error). --log-format
text (the default) gives timestamped lines; json gives one object per line:
{"ts": ..., "level": "info|warning|error", "event": ..., "pid": ..., ...}, with events
run_started, lock_taken_over, table_started, progress, table_finished, message,
run_finished (status, exit_code, result) and error (exit_code, message). The console
output is unchanged, except that --quiet with a log prints nothing but errors and
warnings, and a line is not printed twice when stderr is the log file itself. Secrets
are never logged. --dry-run writes nothing: it refuses both options. For cron, see:
migrate schedule --help

"""

SCHEDULE_EPILOG = """example: migrate schedule plans/demo.toml --every 15m

Prints '#' comment lines (what the job does, the lock, the environment variables the
plan needs and cron lacks; never their values), then one crontab line with absolute
paths: cd into the plan's folder, run it with --quiet --log-file LOG --log-format FMT,
and append the command's own output to LOG too. Install it with crontab -e.
--every: Nm (1 to 59 minutes: */N * * * *), Nh (1, 2, 3, 4, 6, 8 or 12 hours:
0 */N * * *; 60m is 1h) or 1d (0 0 * * *; 24h is 1d). Default log: <plan
folder>/<plan file stem>.log; a --log-file folder must exist.

"""


CHECK_EPILOG = """examples:
  migrate check plan.toml
  migrate check plan.toml --exact --html /tmp/survey.html
  migrate check plan.toml --pilot 1000 --pilot-prefix pilot_

Writes nothing to any target (except with --pilot, which removes what it copied) and no
state. The report goes to the console (or --json) and to one HTML file. Findings are
blockers (the run would fail: exit 2) or warnings (exit 0).

"""

ROLLBACK_EPILOG = """examples:
  migrate rollback plan.toml --dry-run          # list the actions, write the scripts
  migrate rollback plan.toml --run 7            # undo run 7 (later runs first)
  migrate rollback plan.toml --batch business   # undo every run of one batch

Undoes newest change first. The scripts (.sql per database, .sh per file system, .json
per object store) go to <state folder>/<state stem>.rollback/<time>/ and hold the same
actions, for a DBA to read or run by hand. An interrupted rollback continues where it
stopped when run again. Takes the plan's lock.

"""

VALIDATE_EPILOG = """examples:
  migrate validate plans/demo.toml
  migrate validate plan.toml --step erp-db --table 'order*' --json --redact

Compares every table of the plan (or of --step, --table) on both sides without writing
to either database: per key-range chunk a count and a checksum computed inside each
database; differing chunks are split until the differing rows are found, then those
rows are compared value by value. Known differences are the rules of [steps.rules] and
[steps.overrides.NAME.rules]. Takes no lock: it may run while catch-up passes continue.
Results go to the console (or --json), the state file and an HTML report (--html PATH,
default: beside the state file). Exit 0 when all is equal, 3 when anything differs.

"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors exit 2 with one line
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
        epilog=RUN_EPILOG + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("plan", help="the plan file (TOML)")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="survey: what each step would do, the numbers and what could go wrong;"
        " write nothing (same as migrate check)",
    )
    run.add_argument(
        "--step",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this step (repeatable)",
    )
    run.add_argument(
        "--batch",
        action="append",
        default=[],
        metavar="NAME",
        help="run only the steps of this batch (repeatable)",
    )
    run.add_argument(
        "--continue-on-error",
        action="store_true",
        help="run the later batches even when a batch failed or its validation found"
        " differences (by default the run stops before the next batch)",
    )
    _survey_options(run)
    run.add_argument(
        "--restart",
        action="store_true",
        help="forget earlier progress of the selected steps and copy again",
    )
    run.add_argument(
        "--cutover",
        action="store_true",
        help="final pass before cut-over: a last catch-up, then validation of every table"
        " and an acceptance summary",
    )
    run.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument(
        "--redact",
        action="store_true",
        help="mask row values in the checksum validation's output and in the state",
    )
    _log_options(
        run,
        "append the run's log to PATH (created with its folders)",
        "text (timestamped lines, the default) or json (one object per line); without"
        " --log-file the log goes to stderr in place of the progress display",
    )

    check = sub.add_parser(
        "check",
        help="survey a plan before the migration window (migrate run --dry-run)",
        description="Survey a plan without writing anything: connections (latency,"
        " throughput, privileges), tables (rows, bytes, keys, cursors, type and name"
        " changes, foreign-key order), file steps, estimated time per step and wave, the"
        " rollback plan, blockers and warnings.",
        epilog=CHECK_EPILOG + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("plan", help="the plan file (TOML)")
    check.add_argument(
        "--step", action="append", default=[], metavar="NAME", help="only this step (repeatable)"
    )
    check.add_argument(
        "--batch", action="append", default=[], metavar="NAME", help="only this batch"
    )
    _survey_options(check)
    check.add_argument("--json", action="store_true", help="print the report as JSON")

    rollback = sub.add_parser(
        "rollback",
        help="undo what runs changed on the targets, newest change first",
        description="Undo the changes runs made to the targets, from the records each run"
        " kept before changing anything: drop the tables it created, restore rows and files"
        " it overwrote or deleted from their backups. Also writes the same actions as plain"
        " scripts per target connection.",
        epilog=ROLLBACK_EPILOG + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rollback.add_argument("plan", help="the plan file (TOML)")
    rollback.add_argument("--run", type=int, metavar="ID", help="only this run's changes")
    _undo_options(rollback, "list the actions and write the scripts only")

    cleanup = sub.add_parser(
        "cleanup",
        help="accept the migration: drop the backups rollback would restore from",
        description="Accept the migration: drop the backup tables and backup files kept"
        " for rollback. Afterwards those changes can no longer be rolled back.",
        epilog="example: migrate cleanup plan.toml --dry-run\n\n" + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cleanup.add_argument("plan", help="the plan file (TOML)")
    _undo_options(cleanup, "list the backups and write the script only")

    schedule = sub.add_parser(
        "schedule",
        help="print the crontab line that runs a plan every few minutes",
        description="Print the crontab line (with comments) that runs a plan unattended.",
        epilog=SCHEDULE_EPILOG + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    schedule.add_argument("plan", help="the plan file (TOML)")
    schedule.add_argument(
        "--every",
        required=True,
        metavar="INTERVAL",
        help="how often: Nm, Nh or 1d (15m, 2h, 1d)",
    )
    _log_options(
        schedule,
        "the log file the job appends to (default: <plan folder>/<plan stem>.log)",
        "the job's log format: text (timestamped lines, the default) or json",
    )

    validate = sub.add_parser(
        "validate",
        help="compare source and target tables by checksums, down to the differing rows",
        description="Compare source and target tables: counts and checksums per chunk,"
        " the differing rows located and shown column by column.",
        epilog=VALIDATE_EPILOG + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("plan", help="the plan file (TOML)")
    validate.add_argument(
        "--step", action="append", default=[], metavar="NAME", help="only this step (repeatable)"
    )
    validate.add_argument(
        "--table",
        action="append",
        default=[],
        metavar="NAME",
        help="only this source table (a glob such as 'order*'; repeatable)",
    )
    validate.add_argument("--json", action="store_true", help="print the result as JSON")
    validate.add_argument(
        "--html",
        metavar="PATH",
        help="write the HTML report here (default: <state file>.validation.html)",
    )
    validate.add_argument(
        "--redact",
        action="store_true",
        help="mask row values (keys and column names stay) in every output and the state",
    )
    validate.add_argument(
        "--hash",
        choices=("auto", "canonical"),
        default="auto",
        help="auto: a cheaper hash when both sides are the same engine with the same"
        " column types; canonical: always the cross-engine MD5 of the canonical text",
    )
    validate.add_argument("--quiet", action="store_true", help="no progress output")

    status = sub.add_parser(
        "status",
        help="show progress per step and table",
        description="Show, per step and table, rows copied, chunks done and left, and the"
        " last error; for catch-up steps also the watermark or binlog position, the last"
        " pass (rows read, changed, deleted) and the lag.",
        epilog="example: migrate status plans/demo.toml --json\n\n" + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("plan", help="the plan file (TOML)")
    status.add_argument("--json", action="store_true", help="print JSON on stdout")
    return parser


def _undo_options(parser: argparse.ArgumentParser, dry_run_help: str) -> None:
    """The options ``rollback`` and ``cleanup`` share: what to select, and how to say it."""
    parser.add_argument("--batch", metavar="NAME", help="only the steps of this batch")
    parser.add_argument(
        "--step", action="append", default=[], metavar="NAME", help="only this step (repeatable)"
    )
    parser.add_argument("--dry-run", action="store_true", help=dry_run_help)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _survey_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--exact",
        action="store_true",
        help="survey: count every table's rows exactly (default: the engine's statistics)",
    )
    parser.add_argument(
        "--html",
        metavar="PATH",
        help="survey: write the HTML report here (default: <state file>.survey.html)",
    )
    parser.add_argument(
        "--pilot",
        type=int,
        metavar="N",
        help="survey with a pilot: copy N rows per table and N files per file step into"
        " the targets, validate them, remove them, and estimate from the measured speed",
    )
    parser.add_argument(
        "--pilot-prefix",
        metavar="PREFIX",
        help="pilot into scratch names: tables PREFIX<name>, files under PREFIX/ (default:"
        " the final tables and paths, which must not hold data yet)",
    )


def _log_options(parser: argparse.ArgumentParser, file_help: str, format_help: str) -> None:
    parser.add_argument("--log-file", metavar="PATH", help=file_help)
    parser.add_argument("--log-format", choices=LOG_FORMATS, help=format_help)


class _Output:
    """Where the command reports besides its result: stderr lines and the run log.

    A line meant for stderr is not printed when stderr *is* the log (``--log-format``
    without ``--log-file``, or a cron line appending the command's output to its own log
    file): the log already holds it as a record.
    """

    def __init__(self) -> None:
        self.log: RunLog | None = None
        self.secrets: frozenset[str] = frozenset()
        #: Fields every ``error`` record carries (the plan file).
        self.context: dict[str, Any] = {}

    def set_secrets(self, secrets: frozenset[str]) -> None:
        self.secrets = secrets
        if self.log is not None:
            self.log.secrets = secrets

    def stderr_is_log(self) -> bool:
        return self.log is not None and self.log.is_stream(sys.stderr)

    def stdout_is_log(self) -> bool:
        return self.log is not None and self.log.is_stream(sys.stdout)

    def warn(self, text: str, event: str, **fields: Any) -> None:
        """One warning line on stderr and one ``warning`` record."""
        if not self.stderr_is_log():
            print(f"migrate: warning: {text}", file=sys.stderr)
        if self.log is not None:
            self.log.write("warning", event, f"warning: {text}", message=text, **fields)

    def fail(self, exit_code: int, text: str, console: str | None = None) -> None:
        """An error that ends the command: one line on stderr, one ``error`` record."""
        if not self.stderr_is_log():
            print(console or f"migrate: error: {text}", file=sys.stderr)
        if self.log is not None:
            level = "warning" if exit_code == EXIT_INTERRUPTED else "error"
            self.log.write(
                level,
                "error",
                f"{level}: {text} (exit {exit_code})",
                exit_code=exit_code,
                message=text,
                **self.context,
            )

    def bug(self, trace: str) -> None:
        """An unexpected exception: the traceback (redacted) and what it means."""
        trace = redact(trace, self.secrets)
        text = "internal error (a bug); the state is safe to rerun from"
        if not self.stderr_is_log():
            print(trace, file=sys.stderr, end="")
            print(f"migrate: {text}", file=sys.stderr)
        if self.log is not None:
            self.log.write(
                "error",
                "error",
                f"error: {text} (exit {EXIT_ERROR})\n{trace}",
                exit_code=EXIT_ERROR,
                message=text,
                traceback=trace,
                **self.context,
            )

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv``; returns the exit code (see the module docstring)."""
    args = build_parser().parse_args(argv)
    stdout = Console(soft_wrap=True)
    if not stdout.is_terminal:  # files and cron mail: wide enough for the tables
        stdout = Console(soft_wrap=True, width=160)
    stderr = Console(stderr=True, soft_wrap=True)
    out = _Output()
    plan: Plan | None = None
    previous_sigterm: Any = None
    sigterm_set = False
    try:
        if args.command in ("run", "validate", "rollback", "cleanup", "check"):
            # SIGTERM (systemd stop) acts as Ctrl-C
            previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
            sigterm_set = True
            out.context["plan_file"] = str(Path(args.plan).resolve())
        if args.command == "run":
            out.log = _open_log(args)
        every = parse_every(args.every) if args.command == "schedule" else None
        plan = load_plan(args.plan)
        out.set_secrets(plan.secrets)
        if args.command == "run":
            return _run(args, plan, stdout, stderr, out)
        if args.command == "validate":
            return _validate(args, plan, stdout, stderr)
        if args.command == "check":
            _selected_steps(args, plan)
            return _survey(args, plan, stdout, stderr)
        if args.command in ("rollback", "cleanup"):
            return _rollback(args, plan, stdout, stderr)
        if every is not None:
            return _schedule(args, plan, every)
        return _status(args, plan, stdout)
    except MigrateError as exc:
        text = redact(str(exc), plan.secrets) if plan else str(exc)
        out.fail(exc.exit_code, text)
        return exc.exit_code
    except KeyboardInterrupt:
        out.fail(EXIT_INTERRUPTED, "interrupted", console="migrate: interrupted")
        return EXIT_INTERRUPTED
    except Exception:  # a bug: show it, without secrets
        out.bug(traceback.format_exc())
        return EXIT_ERROR
    finally:
        if sigterm_set:
            signal.signal(signal.SIGTERM, previous_sigterm or signal.SIG_DFL)
        out.close()


def _open_log(args: argparse.Namespace) -> RunLog | None:
    """The run log asked for on the command line, or None."""
    survey = [
        o
        for o, on in (
            ("--exact", args.exact),
            ("--html", args.html),
            ("--pilot", args.pilot is not None),
            ("--pilot-prefix", args.pilot_prefix),
        )
        if on
    ]
    if args.pilot_prefix and args.pilot is None:
        raise PlanError("--pilot-prefix needs --pilot N")
    if survey and not args.dry_run and args.pilot is None:
        raise PlanError(f"{survey[0]} is an option of the survey: add --dry-run (or --pilot N)")
    if args.dry_run and (args.log_file or args.log_format):
        raise PlanError(
            "--log-file and --log-format are for runs; --dry-run writes nothing"
            " (--dry-run --json gives its report as JSON)"
        )
    if args.log_file:
        return RunLog.open(args.log_file, args.log_format or "text")
    if args.log_format:
        return RunLog.to_stream(sys.stderr, args.log_format)
    return None


def _run(
    args: argparse.Namespace, plan: Plan, stdout: Console, stderr: Console, out: _Output
) -> int:
    _selected_steps(args, plan)
    if args.dry_run or args.pilot is not None:
        return _survey(args, plan, stdout, stderr)

    from migrate.report import print_run, run_to_json
    from migrate.runner import Runner
    from migrate.state import RunLock, State

    lock = RunLock(plan.state_path)
    previous_holder = lock.acquire()
    try:
        state = State(plan.state_path, plan.name)
        try:
            progress = _progress(args, stderr, out)
            command = shlex.join(sys.argv)
            if out.log is not None:
                host = socket.gethostname()
                out.log.write(
                    "info",
                    "run_started",
                    f"run started: plan {plan.name} ({plan.path}), pid {os.getpid()} on {host}",
                    plan=plan.name,
                    plan_file=str(plan.path),
                    host=host,
                    command=command,
                    cutover=args.cutover,
                )
            if previous_holder:
                out.warn(
                    f"taking over the lock left by {previous_holder}"
                    " (that run ended without releasing it)",
                    "lock_taken_over",
                    previous_holder=previous_holder,
                )
            runner = Runner(
                plan,
                state,
                progress,
                restart=args.restart,
                only_steps=tuple(args.step),
                cutover=args.cutover,
                redact=args.redact,
                batches=tuple(args.batch),
                continue_on_error=args.continue_on_error,
            )
            with progress.live():
                result = runner.run(command)
        finally:
            state.close()
    finally:
        lock.release()
    summary = run_to_json(result)
    if out.log is not None:
        code = result.exit_code
        level = "info" if code == EXIT_OK else "warning" if code == EXIT_INTERRUPTED else "error"
        out.log.write(
            level,
            "run_finished",
            _render(print_run, result) if out.log.format == "text" else "",
            status=result.status,
            exit_code=code,
            message=result.message,
            result=summary,
        )
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    elif not (args.quiet and out.log is not None) and not out.stdout_is_log():
        print_run(stdout, result)
    return result.exit_code


def _selected_steps(args: argparse.Namespace, plan: Plan) -> tuple[str, ...]:
    """The steps ``--step``/``--batch`` select (all when neither is given); unknown names
    are a plan error (see :func:`migrate.planner.select_steps`)."""
    from migrate.planner import select_steps

    batch = getattr(args, "batch", None) or []
    batches = [batch] if isinstance(batch, str) else batch
    return select_steps(plan, batches, args.step, shown=args.plan)


def _survey(args: argparse.Namespace, plan: Plan, stdout: Console, stderr: Console) -> int:
    """``migrate check`` / ``migrate run --dry-run``: the survey report, with a pilot."""
    from migrate.dryrun import dry_run, print_dry_run
    from migrate.survey_html import survey_html

    if args.pilot_prefix and args.pilot is None:
        raise PlanError("--pilot-prefix needs --pilot N")
    if args.pilot is not None and args.pilot < 1:
        raise PlanError(f"--pilot {args.pilot}: give a number of rows/files of at least 1")
    html_path = Path(args.html) if args.html else plan.state_path.with_suffix(".survey.html")
    if args.html and not html_path.parent.is_dir():
        raise PlanError(f"--html {args.html}: folder {html_path.parent} does not exist")
    steps = _selected_steps(args, plan)
    measured = None
    pilot_report = None
    if args.pilot is not None:
        from migrate.pilot import pilot_run

        pilot_report = pilot_run(
            plan, args.pilot, steps=steps, prefix=args.pilot_prefix, quiet=args.json
        )
        measured = pilot_report["measured"]
    report = dry_run(plan, steps, exact=args.exact, measured=measured)
    if pilot_report is not None:
        report["pilot"] = pilot_report
        if pilot_report.get("blockers"):
            report.setdefault("blockers", []).extend(pilot_report["blockers"])
            report["problems"] = len(report["blockers"])
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(survey_html(report), encoding="utf-8")
    report["html"] = str(html_path)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    else:
        print_dry_run(stdout, report)
        stdout.print(f"report: {html_path}")
    return EXIT_PLAN if report["problems"] else EXIT_OK


def _rollback(args: argparse.Namespace, plan: Plan, stdout: Console, stderr: Console) -> int:
    """``migrate rollback`` and ``migrate cleanup``: see :mod:`migrate.rollback`."""
    from migrate.rollback import cleanup, print_result, result_to_json, rollback
    from migrate.runner import Endpoints
    from migrate.state import RunLock, State

    _selected_steps(args, plan)
    lock = RunLock(plan.state_path)
    if not plan.state_path.exists():
        raise PlanError(f"no state at {plan.state_path}: nothing has run for this plan yet")
    lock.acquire()
    try:
        state = State(plan.state_path, plan.name, create=False)
        endpoints = Endpoints(plan, workers=1, dry_run=False)
        try:
            if args.command == "rollback":
                result = rollback(
                    plan,
                    state,
                    endpoints,
                    run_id=args.run,
                    batch=args.batch,
                    steps=tuple(args.step),
                    dry_run=args.dry_run,
                )
            else:
                result = cleanup(
                    plan,
                    state,
                    endpoints,
                    batch=args.batch,
                    steps=tuple(args.step),
                    dry_run=args.dry_run,
                )
        finally:
            endpoints.close()
            state.close()
    finally:
        lock.release()
    if args.json:
        print(json.dumps(result_to_json(result), indent=2, ensure_ascii=False, default=str))
    else:
        print_result(stdout, result)
    return EXIT_ERROR if result.error else EXIT_OK


def _progress(args: argparse.Namespace, stderr: Console, out: _Output) -> TeeProgress:
    """The console display (none where stderr is the log) plus the run log, if any."""
    display: Progress
    if out.stderr_is_log() or (args.quiet and out.log is not None):
        display = Progress()  # the log is the display; --quiet with a log: a silent console
    elif args.quiet or args.json:
        display = QuietProgress()
    elif stderr.is_terminal:
        display = RichProgressDisplay(stderr)
    else:
        display = LogProgress()
    if out.log is None:
        return TeeProgress(display)
    return TeeProgress(display, LogProgress(out.log))


def _render(printer: Any, *values: Any) -> str:
    """What ``printer(console, *values)`` shows, as plain text (no colours, 160 wide)."""
    buf = io.StringIO()
    printer(Console(file=buf, width=160, no_color=True, soft_wrap=True), *values)
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip("\n").splitlines())


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _schedule(args: argparse.Namespace, plan: Plan, every: Every) -> int:
    """Print the crontab comments and line for ``plan``; see :mod:`migrate.schedule`."""
    log_file = Path(os.path.abspath(args.log_file)) if args.log_file else default_log_file(plan)
    if not log_file.parent.is_dir():
        raise PlanError(
            f"--log-file {log_file}: folder {log_file.parent} does not exist (the shell"
            " opens the log before migrate starts: create the folder first)"
        )
    lines = crontab_lines(plan, every, log_file, args.log_format or "text", migrate_command())
    print("\n".join(lines))
    return EXIT_OK


def _validate(args: argparse.Namespace, plan: Plan, stdout: Console, stderr: Console) -> int:
    """``migrate validate``: see :mod:`migrate.validate`."""
    from migrate.html_report import validation_html
    from migrate.report import print_validation
    from migrate.state import State
    from migrate.validate import default_html_path, record, result_to_json, validate_plan

    _selected_steps(args, plan)
    html_path = Path(args.html) if args.html else default_html_path(plan)
    if not html_path.parent.is_dir() and args.html:
        raise PlanError(f"--html {args.html}: folder {html_path.parent} does not exist")
    display: Progress
    if args.quiet or args.json:
        display = QuietProgress()
    elif stderr.is_terminal:
        display = RichProgressDisplay(stderr)
    else:
        display = LogProgress(verbs=("validating", "validated"))
    with TeeProgress(display).live() as progress:
        result = validate_plan(
            plan,
            steps=tuple(args.step),
            tables=tuple(args.table),
            hash_mode=args.hash,
            progress=progress,
        )
    state = State(plan.state_path, plan.name)
    try:
        result.check_id = record(state, result.tables, None, args.redact)
    finally:
        state.close()
    result.html = str(html_path)
    data = result_to_json(result, args.redact)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(validation_html(data), encoding="utf-8")
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        print_validation(stdout, data)
    return result.exit_code


def _status(args: argparse.Namespace, plan: Plan, stdout: Console) -> int:
    from migrate.report import file_status_rows, print_file_status, print_status, status_rows
    from migrate.state import State

    state = State(plan.state_path, plan.name, create=False)
    try:
        run = state.last_run()
        rows = status_rows(state, {s.name: s.chunk_rows for s in plan.steps})
        file_rows = file_status_rows(state)
    finally:
        state.close()
    if args.json:
        print(
            json.dumps(
                {
                    "plan": plan.name,
                    "last_run": dict(run) if run else None,
                    "tables": rows,
                    "file_steps": file_rows,
                },
                indent=2,
                ensure_ascii=False,
                default=str,
            )
        )
    else:
        print_status(stdout, run, rows)
        print_file_status(stdout, file_rows)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
