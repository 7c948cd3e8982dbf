"""Running the CLI inside the test process, and reading its one error line."""

from __future__ import annotations

import contextlib
import io

import pytest

from tts_host.cli.main import main


def run_cli_here(*args: str) -> tuple[int, str, str]:
    """Run the tts-host CLI in this process; returns (exit code, stdout, stderr)."""
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def cli_ok(*args: str) -> str:
    """Run the CLI here; it must succeed. Returns its stdout."""
    code, out, err = run_cli_here(*args)
    assert code == 0, out + err
    return out


def cli_refused(*args: str) -> str:
    """Run the CLI here; it must fail with exit 1 and one error line, which is returned."""
    code, out, err = run_cli_here(*args)
    assert code == 1, out + err
    return error_line(err)


def error_line(stderr: str) -> str:
    """The one ``error:`` line the CLI printed (there must be exactly one, and no traceback)."""
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def assert_forgetting_recorded(shown: dict, *, new: str, earlier: str) -> None:
    """``voices show --json`` of a sequential fine-tune: the fields every backend records, and their values."""
    from tts_host.training.report import TRAINING_FIELDS

    training = shown["training"]
    assert sorted(training) == sorted(TRAINING_FIELDS)
    assert set(training["heldout"]) == {new, earlier} and set(training["forgetting"]) == {earlier}
    for figures in training["heldout"].values():
        assert set(figures) == {"before", "after", "rise"} and figures["before"] > 0 and figures["after"] > 0
        assert figures["rise"] == pytest.approx(figures["after"] / figures["before"] - 1)
    assert training["train_loss_last"] < training["train_loss_first"]
