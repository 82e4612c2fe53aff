"""The command's edges: -v/-q before or after the subcommand, exit codes (2 usage, 1 a failure while working),
and the logging it configures only while it runs, showing what the modules log as the terminal did before."""

from __future__ import annotations

import logging

import pytest

from hamtune.cli import build_parser, console_logging, main
from hamtune.sweep.space import SHIPPED_DIR


@pytest.mark.parametrize(
    "argv",
    [
        ["-v", "data", "info", "x"],
        ["data", "-v", "info", "x"],
        ["data", "info", "x", "--verbose"],
    ],
)
def test_verbose_is_taken_before_or_after_the_subcommand(argv):
    args = build_parser().parse_args(argv)
    assert args.verbose and not getattr(args, "quiet", False)


@pytest.mark.parametrize("argv", [["-q", "report"], ["report", "-q"], ["report", "--quiet", "--no-html"]])
def test_quiet_is_taken_before_or_after_the_subcommand(argv):
    assert build_parser().parse_args(argv).quiet


def test_usage_errors_exit_2_and_failures_while_working_exit_1(tmp_path, capsys):
    for usage in (["-v", "data", "info", "x", "-q"], ["data", "synth", str(tmp_path / "s"), "--n", "many"], ["nope"]):
        with pytest.raises(SystemExit) as exited:
            main(usage)
        assert exited.value.code == 2
    assert main(["data", "synth", str(tmp_path / "s"), "--n", "-5"]) == 2  # a bad value, found by the library
    assert main(["data", "info", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert "-v/--verbose and -q/--quiet exclude each other" in err and "hamtune: error: n must be an integer" in err


@pytest.mark.parametrize(
    ("verbosity", "out", "err"),
    [
        (0, "", "a line\nhamtune: a note\n"),
        (-1, "", ""),
        (1, "", "hamtune: DEBUG: a detail\na line\nhamtune: a note\n"),
    ],
)
def test_what_the_modules_log_reaches_stderr_only_and_the_setup_is_undone(verbosity, out, err, capsys, caplog):
    """Progress is no result: INFO plain on stderr (stderr=True: after `hamtune: `), DEBUG with -v; stdout stays for
    what a command prints; warnings go to the root's
    handlers as any library's (here pytest's, which is why the root gets no handler of hamtune's)."""
    module = logging.getLogger("hamtune.sweep.example")
    root, hamtune = logging.getLogger(), logging.getLogger("hamtune")
    before = (list(root.handlers), root.level, list(hamtune.handlers), hamtune.level)
    with console_logging(verbosity):
        module.debug("a detail")
        module.info("a line")
        module.info("a note", extra={"stderr": True})
        module.warning("a warning")
    assert capsys.readouterr() == (out, err)
    assert "a warning" in caplog.text
    assert (list(root.handlers), root.level, list(hamtune.handlers), hamtune.level) == before
    module.info("after")
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("command", [["train"], ["sweep", str(SHIPPED_DIR / "quick.yaml")]])
def test_the_same_bad_set_value_is_the_same_usage_error_in_every_command(command, tmp_path, capsys):
    """`--set kind=gan` is a bad argument wherever it is given: exit 2 and one line naming --set, before any work."""
    assert main([*command, "--set", "kind=gan", "--results", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "hamtune: error: --set: kind must be one of ae, vae, got 'gan'"
    assert not any(tmp_path.iterdir())
