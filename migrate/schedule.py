"""``migrate schedule``: the crontab line that runs a plan unattended.

Contract of :func:`crontab_lines`: comment lines (``#``) saying what the job does, then
exactly one crontab entry: five time fields, then a ``/bin/sh`` command that changes into
the plan's folder and runs ``migrate run PLAN --quiet --log-file LOG --log-format FMT``,
appending its own stdout and stderr to the same LOG (``>> LOG 2>&1``). Every path in it is
absolute, because cron starts jobs in the home folder with a minimal environment (``PATH``
is ``/usr/bin:/bin``, none of the user's variables). No secret value is ever part of the
output: only the *names* of the environment variables the plan reads.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrate.errors import PlanError
from migrate.plan import _VAR, Plan

EVERY_HELP = "Nm (1 to 60 minutes), Nh (1, 2, 3, 4, 6, 8, 12 or 24 hours) or 1d"
_EVERY = re.compile(r"^([1-9][0-9]*)([mhd])$")
_HOURS = (1, 2, 3, 4, 6, 8, 12)


@dataclass(frozen=True)
class Every:
    """A parsed ``--every``: the cron time fields and how to say them in words."""

    spec: str
    cron: str
    words: str
    #: Set when the gaps are not all equal (``*/7`` restarts at minute 0 each hour).
    note: str | None = None


def parse_every(spec: str) -> Every:
    """``15m`` → ``*/15 * * * *``; ``2h`` → ``0 */2 * * *``; ``1d`` → ``0 0 * * *``.

    Minutes 1 to 59 give ``*/N * * * *`` (60m is 1h); hours that divide 24 give
    ``0 */N * * *`` (24h is 1d). Anything else raises :class:`PlanError` (exit 2) naming
    the value and what is accepted.
    """
    m = _EVERY.match(spec)
    n, unit = (int(m.group(1)), m.group(2)) if m else (0, "")
    if unit == "m" and n == 60:
        n, unit = 1, "h"
    if unit == "h" and n == 24:
        n, unit = 1, "d"
    if unit == "m" and n < 60:
        note = None
        if 60 % n:
            last = 59 // n * n
            note = (
                f"*/{n} starts at minutes 0, {n}, ..., {last} of every hour: the last gap of"
                f" each hour is {60 - last} minutes"
            )
        return Every(spec, f"*/{n} * * * *", _plural(n, "minute"), note)
    if unit == "h" and n in _HOURS:
        return Every(spec, f"0 */{n} * * *", _plural(n, "hour") + " at minute 0")
    if unit == "d" and n == 1:
        return Every(spec, "0 0 * * *", "day at 00:00 (the machine's time zone)")
    raise PlanError(f"--every {spec}: not a schedule this accepts; use {EVERY_HELP}")


def _plural(n: int, unit: str) -> str:
    return unit if n == 1 else f"{n} {unit}s"


def plan_variables(plan_path: Path) -> list[str]:
    """The names of the ``${VAR}``s in the plan's string values, in first-use order.

    Uses the plan parser's own pattern (``migrate.plan._VAR``) on the parsed TOML values, so
    a ``${VAR}`` in a comment is not counted. Values are never read here.
    """
    data = tomllib.loads(plan_path.read_text(encoding="utf-8"))
    names: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            for name in _VAR.findall(value):
                if name not in names:
                    names.append(name)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(data)
    return names


def migrate_command() -> list[str]:
    """The absolute command of the ``migrate`` that is running now.

    ``sys.argv[0]`` when it is the ``migrate`` console script (made absolute, looked up
    on ``PATH`` if it is a bare name; symlinks are kept, not followed, so a virtualenv's
    script keeps its virtualenv); otherwise ``sys.executable -m migrate.cli`` (``python -m``,
    or called from another program). ``sys.executable`` is made absolute without
    following symlinks either: a virtualenv's python is a symlink whose target has no
    access to the virtualenv's packages.
    """
    arg0 = sys.argv[0] if sys.argv else ""
    if arg0 and os.sep not in arg0:
        arg0 = shutil.which(arg0) or ""
    if arg0:
        path = Path(os.path.abspath(arg0))
        name = path.name
        if (
            name.startswith("migrate")
            and not name.endswith(".py")
            and path.is_file()
            and os.access(path, os.X_OK)
        ):
            return [str(path)]
    return [os.path.abspath(sys.executable), "-m", "migrate.cli"]


def default_log_file(plan: Plan) -> Path:
    """``<plan folder>/<plan file stem>.log``: beside the plan, named after its file."""
    return plan.path.parent / f"{plan.path.stem}.log"


def _cron_text(text: str, what: str) -> str:
    """A crontab command is one line in which cron turns ``%`` into a newline unless it is
    written ``\\%`` (cron removes the backslash): escape it; refuse a newline."""
    if "\n" in text or "\r" in text:
        raise PlanError(f"{what} has a line break, which a crontab line cannot hold: {text!r}")
    return text.replace("%", "\\%")


def crontab_lines(
    plan: Plan,
    every: Every,
    log_file: Path,
    log_format: str,
    command: list[str],
) -> list[str]:
    """The comment lines and the one crontab entry (see the module docstring).

    ``command`` is the absolute ``migrate`` command (:func:`migrate_command`).
    """
    plan_dir = plan.path.parent
    lock = plan.state_path.with_name(plan.state_path.name + ".lock")
    q = shlex.quote
    run = " ".join(
        [
            *(q(c) for c in command),
            "run",
            q(str(plan.path)),
            "--quiet",
            "--log-file",
            q(str(log_file)),
            "--log-format",
            log_format,
        ]
    )
    entry = f"cd {q(str(plan_dir))} && {run} >> {q(str(log_file))} 2>&1"
    entry = _cron_text(entry, "a path")
    schedule = " ".join(
        [
            *(q(c) for c in command),
            "schedule",
            q(str(plan.path)),
            "--every",
            q(every.spec),
            "--log-file",
            q(str(log_file)),
            "--log-format",
            log_format,
        ]
    )
    lines = [
        f"# migrate: run plan {plan.name!r} ({plan.path}) every {every.words}.",
        f"# Each run appends its log to {log_file} ({log_format} format);",
        "# so does anything the command itself prints, so cron mails nothing.",
        "# A run that starts while the previous one is still going exits at once with code 4",
        f"# (another run holds {lock}), noted in the log; the next start tries again.",
        "# Exit codes: 0 done, 1 error, 2 plan error, 3 counts differ, 4 locked, 5 interrupted.",
        "# Install once: crontab -e and paste the last line, or",
        f"#   (crontab -l 2>/dev/null; {schedule}) | crontab -",
    ]
    if every.note:
        lines.append(f"# Note: {every.note}.")
    names = plan_variables(plan.path)
    if names:
        env_file = plan_dir / f"{plan.path.stem}.env"
        lines += [
            f"# The plan reads {', '.join(names)} from the environment, and cron jobs do not"
            " have your environment variables.",
            "# Set them at the top of the crontab (NAME=value lines, before this entry), or"
            f" keep them in a file only you can read (chmod 600 {env_file})",
            f"# and start the command with: set -a && . {q(str(env_file))} && set +a &&",
        ]
    lines.append(f"{every.cron} {entry}")
    return lines
