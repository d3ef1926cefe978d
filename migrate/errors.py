"""The project's own errors and the exit codes they map to.

Exit codes (documented in the README, never 0 on failure):

====  =====================================================
0     done
1     error (a connection failed, a statement failed, a bug)
2     plan or usage error
3     validation found differences
4     another run holds the lock
5     interrupted or partly done, safe to rerun
====  =====================================================

Every error a user can cause is one of these classes and renders as one line; only a
bug reaches the user as a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_PLAN = 2
EXIT_DIFFERENCES = 3
EXIT_LOCKED = 4
EXIT_INTERRUPTED = 5


class MigrateError(Exception):
    """Base of every error the tool reports as one line.

    ``retryable`` says whether running again can help (a dropped connection) or not
    (a wrong password); the runner and the report use it.
    """

    exit_code = EXIT_ERROR
    retryable = False


class PlanError(MigrateError):
    """The plan file or the command line is wrong. Names the file, key path and line."""

    exit_code = EXIT_PLAN

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.path, self.key, self.line = path, key, line
        where = ""
        if path:
            where = path + (f":{line}" if line else "")
        if key:
            where = f"{where}: {key}" if where else key
        super().__init__(f"{where}: {message}" if where else message)


class ConnectorError(MigrateError):
    """A connector could not do what was asked (connect, read, write). Never holds secrets."""


class TransientError(ConnectorError):
    """A failure that a retry may cure (lost connection, deadlock, timeout)."""

    retryable = True


class MissingDriverError(ConnectorError):
    """The driver for a URL scheme is not installed; the message names the pip line."""

    exit_code = EXIT_PLAN

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"the Python package {module!r} is needed for this connection: "
            f"pip install 'migrate[{extra}]'"
        )


class LockHeldError(MigrateError):
    """Another run holds the state lock."""

    exit_code = EXIT_LOCKED


class InterruptedRun(MigrateError):
    """The run was stopped (signal, Ctrl-C) part way; what is done is kept."""

    exit_code = EXIT_INTERRUPTED


class StateError(MigrateError):
    """The state file is unreadable, from a newer version, or belongs to another plan."""
