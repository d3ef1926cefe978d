"""The plan parser: every mistake is one line naming file, line and key path, exit 2.

Each bad plan is written to a temporary folder and given to ``migrate run`` exactly as a
user would type it (``migrate run plan.toml`` from the plan's folder), so the messages
below are the exact text a user sees on stderr.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.cli import main
from migrate.plan import load_plan

ROOT = Path(__file__).resolve().parent.parent

# Line numbers of HEAD + STEP_A, for reading the expected messages below:
#   1 version = 1            9 [[batches]]        14 [[steps]]
#   2 name = "t"            10 name = "first"     15 name = "a"
#   3 state = "state.db"    11 [[batches]]        16 batch = "first"
#   5 [connections]         12 name = "second"    17 source = "src"
#   6 src = ...                                   18 target = "dst"
#   7 dst = ...                                   19 (the line a case adds)
HEAD = """\
version = 1
name = "t"
state = "state.db"

[connections]
src = { url = "sqlite:///src.db" }
dst = { url = "sqlite:///dst.db" }

[[batches]]
name = "first"
[[batches]]
name = "second"
"""
STEP_A = """
[[steps]]
name = "a"
batch = "first"
source = "src"
target = "dst"
"""
# a second step "b" starting at line 20 when appended after STEP_A + one extra line
STEP_B = """
[[steps]]
name = "b"
batch = "first"
source = "src"
target = "dst"
"""

STEP_KEYS = (
    "after, batch, chunk_rows, cursor, deletes, exclude_tables, if_exists, layer, mode,"
    " name, overlap, overrides, rules, source, start, tables, target, validate, workers"
)

BAD_PLANS = {
    "unknown top-level key": (
        'colour = "red"\n' + HEAD + STEP_A,
        "plan.toml:1: colour: unknown key 'colour' (allowed: batches, connections, defaults,"
        " name, state, steps, version)",
    ),
    "unknown key in a step": (
        HEAD + STEP_A + 'tabels = ["orders"]\n',
        f"plan.toml:19: steps.a.tabels: unknown key 'tabels' (allowed: {STEP_KEYS})",
    ),
    "wrong type": (
        HEAD + STEP_A + 'chunk_rows = "10"\n',
        "plan.toml:19: steps.a.chunk_rows: must be an integer, not a string",
    ),
    "chunk_rows zero": (
        HEAD + STEP_A + "chunk_rows = 0\n",
        "plan.toml:19: steps.a.chunk_rows: must be at least 1, not 0",
    ),
    "wrong type in defaults": (
        HEAD.replace("[connections]", "[defaults]\nworkers = true\n\n[connections]") + STEP_A,
        "plan.toml:6: defaults.workers: must be an integer, not a boolean",
    ),
    "unknown connection": (
        HEAD + STEP_A.replace('source = "src"', 'source = "erp"'),
        "plan.toml:17: steps.a.source: unknown connection 'erp' (defined: src, dst)",
    ),
    "unknown batch": (
        HEAD + STEP_A.replace('batch = "first"', 'batch = "third"'),
        "plan.toml:16: steps.a.batch: unknown batch 'third' (defined: first, second)",
    ),
    "after cycle": (
        HEAD + STEP_A + 'after = ["b"]\n' + STEP_B + 'after = ["a"]\n',
        "plan.toml:19: steps.a.after: dependency cycle: a -> b -> a",
    ),
    "after names an unknown step": (
        HEAD + STEP_A + 'after = ["load-erp"]\n',
        "plan.toml:19: steps.a.after: unknown step 'load-erp'",
    ),
    "after names the step itself": (
        HEAD + STEP_A + 'after = ["a"]\n',
        "plan.toml:19: steps.a.after: a step cannot come after itself",
    ),
    # the duplicate is the second definition (line 21), which is the one to rename or drop
    "duplicate step names": (
        HEAD + STEP_A + "\n" + STEP_A,
        "plan.toml:21: steps.[#2]: step 'a' is defined twice",
    ),
    "missing steps": (
        HEAD,
        "plan.toml: steps: the plan has no [[steps]]",
    ),
    "missing required key": (
        HEAD + STEP_A.replace('target = "dst"\n', ""),
        "plan.toml:14: steps.a: missing required key 'target'",
    ),
    "invalid TOML": (
        HEAD + STEP_A + "mode = full\n",
        "plan.toml:19: invalid TOML: Invalid value",
    ),
    "unknown URL scheme": (
        HEAD.replace("sqlite:///src.db", "ftp://files.example.com/erp") + STEP_A,
        "plan.toml:6: connections.src.url: no connector for URL scheme 'ftp'"
        " (known: file, mariadb, mssql, mysql, nfs, oracle, postgres, postgresql, s3, sample,"
        " sftp, sqlite)",
    ),
    "incremental without a cursor": (
        HEAD + STEP_A + 'mode = "full+incremental"\n',
        'plan.toml:14: steps.a: mode = "full+incremental" needs a cursor: the column whose'
        ' value grows with every change (cursor = "updated_at"), or an always-growing key for'
        " append-only tables; per table in [steps.overrides.NAME]",
    ),
    "cursor on a full step": (
        HEAD + STEP_A + 'cursor = "updated_at"\n',
        "plan.toml:19: steps.a.cursor: 'cursor' needs mode = \"full+incremental\" or"
        ' "incremental" (this step is mode = "full")',
    ),
    "deletes on a cdc step": (
        HEAD + STEP_A + 'mode = "cdc"\ndeletes = "detect"\n',
        'plan.toml:20: steps.a.deletes: mode = "cdc" applies the deletes it reads from the'
        " binary log: drop this key",
    ),
    "overlap not a duration": (
        HEAD + STEP_A + 'mode = "incremental"\ncursor = "updated_at"\noverlap = "5 minutes"\n',
        "plan.toml:21: steps.a.overlap: '5 minutes' is not a duration: use a number and s, m,"
        ' h or d ("90s", "5m") for a time cursor, or a whole number of keys for a numeric'
        " cursor",
    ),
    "start on full+incremental": (
        HEAD + STEP_A + 'mode = "full+incremental"\ncursor = "id"\nstart = 5\n',
        "plan.toml:21: steps.a.start: 'start' is for mode = \"incremental\":"
        ' "full+incremental" records its watermark when the full copy begins',
    ),
    "start not a date-time": (
        HEAD + STEP_A + 'mode = "incremental"\ncursor = "updated_at"\nstart = "yesterday"\n',
        "plan.toml:21: steps.a.start: 'yesterday' is not an ISO date-time like 2026-11-01T00:00:00",
    ),
    "unknown mode": (
        HEAD + STEP_A + 'mode = "fast"\n',
        "plan.toml:19: steps.a.mode: 'fast' is not one of:"
        " full, incremental, full+incremental, cdc",
    ),
    "invalid layer": (
        HEAD + STEP_A + 'layer = "database"\n',
        "plan.toml:19: steps.a.layer: 'database' is not one of: application, platform, data",
    ),
    "unknown key in an override": (
        HEAD + STEP_A + "[steps.overrides.orders]\nchunk = 5\n",
        "plan.toml:20: steps.a.overrides.orders.chunk: unknown key 'chunk'"
        " (allowed: chunk_rows, cursor, key, overlap, rename, rules, start)",
    ),
    "source and target the same": (
        HEAD + STEP_A.replace('target = "dst"', 'target = "src"'),
        "plan.toml:18: steps.a.target: source and target are the same connection",
    ),
    "unsupported version": (
        HEAD.replace("version = 1", "version = 2") + STEP_A,
        "plan.toml:1: version: unsupported plan version 2 (this tool reads 1)",
    ),
    # the planner, not the parser, finds this one: b's wave ("second") runs after a's
    "after points to a later batch": (
        HEAD + STEP_A + 'after = ["b"]\n' + STEP_B.replace('batch = "first"', 'batch = "second"'),
        "plan.toml:19: steps.a.after: step 'b' runs later (second/platform) than this step"
        " (first/platform); batches run in file order and layers application, platform, data",
    ),
    "unknown rule": (
        HEAD + STEP_A + "[steps.rules]\nfloat_tolrance = 0.1\n",
        "plan.toml:20: steps.a.rules.float_tolrance: unknown key 'float_tolrance' (allowed:"
        " case_insensitive, empty_is_null, float_relative_tolerance, float_tolerance,"
        " ignore_columns, timestamp_precision, trailing_blanks)",
    ),
    "negative tolerance": (
        HEAD + STEP_A + "[steps.rules]\nfloat_tolerance = -1\n",
        "plan.toml:20: steps.a.rules.float_tolerance: must be a number above 0, not -1",
    ),
    "two float tolerances": (
        HEAD + STEP_A + "rules = { float_tolerance = 0.1, float_relative_tolerance = 0.01 }\n",
        "plan.toml:19: steps.a.rules.float_relative_tolerance: set float_tolerance"
        " (absolute) or float_relative_tolerance, not both",
    ),
    "timestamp precision": (
        HEAD + STEP_A + 'rules = { timestamp_precision = "us" }\n',
        "plan.toml:19: steps.a.rules.timestamp_precision: 'us' is not one of: s, ms",
    ),
    "rule flag type": (
        HEAD + STEP_A + 'rules = { trailing_blanks = "yes" }\n',
        "plan.toml:19: steps.a.rules.trailing_blanks: must be true or false, not a string",
    ),
    "table rule": (
        HEAD + STEP_A + "[steps.overrides.t.rules]\nignore_columns = 3\n",
        "plan.toml:20: steps.a.overrides.t.rules.ignore_columns: must be a list of strings",
    ),
}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_one_line_error(err: str, expected: str) -> None:
    assert "Traceback" not in err
    assert err.splitlines() == [f"migrate: error: {expected}"]


@pytest.mark.parametrize("text, expected", BAD_PLANS.values(), ids=BAD_PLANS.keys())
def test_bad_plan_is_one_line_with_file_line_and_key(
    text: str,
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "plan.toml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(["run", "plan.toml"], capsys)
    _assert_one_line_error(err, expected)
    assert code == 2
    assert out == ""


def test_unset_variable_is_an_error_never_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MIGRATE_TEST_ERP_PW", raising=False)
    text = HEAD.replace(
        "sqlite:///src.db", "mysql+pymysql://migrator:${MIGRATE_TEST_ERP_PW}@10.0.0.5/erp"
    )
    (tmp_path / "plan.toml").write_text(text + STEP_A, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(["run", "plan.toml"], capsys)
    _assert_one_line_error(
        err,
        "plan.toml:6: connections.src.url: environment variable ${MIGRATE_TEST_ERP_PW} is not set",
    )
    assert code == 2


def test_plan_file_not_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nosuch.toml"
    code, _, err = _run(["run", str(missing)], capsys)
    _assert_one_line_error(err, f"{missing}: plan file not found")
    assert code == 2
    assert list(tmp_path.iterdir()) == []


def test_unknown_step_on_the_command_line_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "plan.toml").write_text(HEAD + STEP_A, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(["run", "plan.toml", "--step", "nosuch"], capsys)
    _assert_one_line_error(err, "--step nosuch: no such step in plan.toml (steps: a)")
    assert code == 2  # a usage error, like every other mistake on the command line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.toml"]


def test_plan_error_found_by_the_planner_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan that cannot be ordered is refused before a state file or a run is created."""
    text = HEAD + STEP_A + 'after = ["b"]\n' + STEP_B.replace('batch = "first"', 'batch = "second"')
    (tmp_path / "plan.toml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, _, _ = _run(["run", "plan.toml"], capsys)
    assert code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.toml"]


def test_after_an_earlier_layer_of_the_same_batch_is_fine(tmp_path: Path) -> None:
    text = (
        HEAD
        + STEP_A
        + 'layer = "data"\nafter = ["b"]\n'
        + STEP_B.replace('batch = "first"', 'batch = "first"\nlayer = "application"')
    )
    (tmp_path / "plan.toml").write_text(text, encoding="utf-8")
    from migrate.planner import waves

    assert [w.layer for w in waves(load_plan(tmp_path / "plan.toml"))] == ["application", "data"]


# -- secrets ---------------------------------------------------------------------------
PASSWORD = "Sup3r-s3cret-Pw"
SECRET_URL = "mysql+pymysql://migrator:${PASSWORD}@127.0.0.1:1/erp"  # port 1: refused at once


def _secret_plan(tmp_path: Path, url: str = SECRET_URL, step: str = STEP_A) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(HEAD.replace("sqlite:///src.db", url) + step, encoding="utf-8")
    return path


def _assert_no_secret(text: str, password: str) -> None:
    from urllib.parse import quote

    assert password not in text
    assert quote(password, safe="") not in text


SECRET_CASES = {
    # a plan error found after the password was substituted
    "plan-error": (STEP_A.replace('source = "src"', 'source = "nosuch"'), [], 2),
    # a connection that fails at run time, in the console and in the JSON result
    "connect-error": (STEP_A, [], 1),
    "connect-error-json": (STEP_A, ["--json"], 1),
    # --dry-run reports the failing step
    "dry-run": (STEP_A, ["--dry-run"], 2),
    "dry-run-json": (STEP_A, ["--dry-run", "--json"], 2),
    # the same variable used where the checker echoes a wrong value
    "echoed-value": (STEP_A + 'if_exists = "${PASSWORD}"\n', [], 2),
}


@pytest.mark.parametrize(
    "step, argv_extra, expected_code", SECRET_CASES.values(), ids=SECRET_CASES.keys()
)
def test_password_from_a_variable_never_appears_in_output(
    step: str,
    argv_extra: list[str],
    expected_code: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PASSWORD", PASSWORD)
    path = _secret_plan(tmp_path, step=step)
    code, out, err = _run(["run", str(path), *argv_extra], capsys)
    assert "Traceback" not in err
    _assert_no_secret(out + err, PASSWORD)
    assert code == expected_code
    for f in tmp_path.rglob("*"):  # nothing secret is stored either
        if f.is_file() and f.name != "plan.toml":
            assert PASSWORD.encode() not in f.read_bytes(), f


def test_password_with_url_special_characters_is_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password holding '@', ':' and '/' gives a one-line error, never a partial leak."""
    password = "p@ss:w/rd#1x"
    monkeypatch.setenv("PASSWORD", password)
    path = _secret_plan(tmp_path)
    code, out, err = _run(["run", str(path)], capsys)
    assert "Traceback" not in err
    _assert_no_secret(out + err, password)
    for fragment in ("ss:w", "rd#1x", "'w'"):
        assert fragment not in out + err
    error_lines = [line for line in err.splitlines() if line.startswith("migrate: error:")]
    assert len(error_lines) == 1 and "connections.src.url" in error_lines[0]
    assert code == 2


# -- good plans --------------------------------------------------------------------------
def test_demo_plan_parses() -> None:
    plan = load_plan(ROOT / "plans" / "demo.toml")
    assert plan.name == "demo"
    assert plan.path == ROOT / "plans" / "demo.toml"
    assert plan.state_path == ROOT / "plans" / ".demo" / "state.db"
    assert list(plan.connections) == ["legacy", "cloud"]
    assert plan.batches == ("erp",)
    (step,) = plan.steps
    assert (step.name, step.batch, step.layer, step.source, step.target) == (
        "erp-db",
        "erp",
        "platform",
        "legacy",
        "cloud",
    )
    assert (step.mode, step.chunk_rows, step.workers, step.validate) == (
        "full",
        500,
        2,
        ("count", "checksum"),
    )
    assert step.tables == ("*",) and step.after == ()
    assert plan.secrets == frozenset()


def test_variables_are_substituted_and_kept_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGRATE_TEST_PW", "pa55word")
    monkeypatch.setenv("MIGRATE_TEST_HOST", "db.internal")
    monkeypatch.setenv("MIGRATE_TEST_TABLE", "orders")
    text = HEAD.replace(
        "sqlite:///src.db", "mysql+pymysql://u:${MIGRATE_TEST_PW}@${MIGRATE_TEST_HOST}:3306/erp"
    )
    (tmp_path / "plan.toml").write_text(
        text + STEP_A + 'tables = ["${MIGRATE_TEST_TABLE}", "cust*"]\n', encoding="utf-8"
    )
    plan = load_plan(tmp_path / "plan.toml")
    src = plan.connections["src"]
    assert src.url == "mysql+pymysql://u:pa55word@db.internal:3306/erp"
    assert src.safe_url == "mysql+pymysql://u:***@db.internal:3306/erp"
    assert plan.steps[0].tables == ("orders", "cust*")
    assert "pa55word" in plan.secrets


def test_relative_state_is_beside_the_plan_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "plans").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "plans" / "p.toml").write_text(
        HEAD.replace('state = "state.db"', 'state = ".state/p.db"') + STEP_A, encoding="utf-8"
    )
    (tmp_path / "plans" / "default.toml").write_text(
        HEAD.replace('state = "state.db"\n', "") + STEP_A, encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert load_plan("../plans/p.toml").state_path == tmp_path / "plans" / ".state" / "p.db"
    # the default is .migrate/NAME.db beside the plan
    assert load_plan("../plans/default.toml").state_path == (
        tmp_path / "plans" / ".migrate" / "t.db"
    )
    absolute = tmp_path / "abs" / "s.db"
    (tmp_path / "plans" / "abs.toml").write_text(
        HEAD.replace('state = "state.db"', f'state = "{absolute}"') + STEP_A, encoding="utf-8"
    )
    assert load_plan("../plans/abs.toml").state_path == absolute


def test_defaults_apply_and_steps_override_them(tmp_path: Path) -> None:
    text = HEAD.replace(
        "[connections]",
        '[defaults]\nchunk_rows = 7\nworkers = 3\nif_exists = "truncate"\n\n[connections]',
    )
    text += STEP_A + STEP_B + "chunk_rows = 9\nworkers = 1\n"
    (tmp_path / "plan.toml").write_text(text, encoding="utf-8")
    a, b = load_plan(tmp_path / "plan.toml").steps
    assert (a.chunk_rows, a.workers, a.if_exists) == (7, 3, "truncate")
    assert (b.chunk_rows, b.workers, b.if_exists) == (9, 1, "truncate")


def test_rules_are_off_by_default_and_a_table_adds_to_its_step(tmp_path: Path) -> None:
    """[steps.rules] apply to every table; [steps.overrides.NAME.rules] add to them."""
    text = (
        HEAD
        + STEP_A
        + 'validate = ["count", "checksum"]\n'
        + '[steps.rules]\nfloat_tolerance = 0.001\nignore_columns = ["synced"]\n'
        + '[steps.overrides.orders.rules]\ntimestamp_precision = "ms"\n'
        + 'ignore_columns = ["audit"]\ncase_insensitive = true\n'
    )
    (tmp_path / "plan.toml").write_text(text, encoding="utf-8")
    step = load_plan(tmp_path / "plan.toml").step("a")
    assert step.validate == ("count", "checksum")
    other = step.table_rules("customers")
    assert other.float_abs == 0.001 and other.ignore_columns == ("synced",)
    assert other.timestamp_precision is None and not other.case_insensitive
    orders = step.table_rules("orders")
    assert orders.float_abs == 0.001 and orders.timestamp_precision == "ms"
    assert orders.case_insensitive and orders.ignore_columns == ("synced", "audit")
    assert not orders.trailing_blanks and not orders.empty_is_null
    (tmp_path / "plan.toml").write_text(HEAD + STEP_A, encoding="utf-8")
    assert load_plan(tmp_path / "plan.toml").step("a").table_rules("x").names() == []


def test_the_nas_to_cloud_example_plan_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """plans/nas-to-cloud.toml (file steps, connector options beside the url) is valid."""
    for var in ("OBS_KEY", "OBS_SECRET", "DROP_PW"):
        monkeypatch.setenv(var, f"value-of-{var}")
    plan = load_plan(Path(__file__).parent.parent / "plans" / "nas-to-cloud.toml")
    share, drop = plan.steps
    assert (share.kind, share.deletes, share.empty_dirs, share.part_size) == (
        "file",
        "propagate",
        "keep",
        16 << 20,
    )
    assert drop.compare == "hash"
    assert plan.connections["obs"].options["storage_class"] == "WARM"
    assert "value-of-OBS_SECRET" in plan.secrets and "value-of-DROP_PW" in plan.secrets
