"""How a report reaches a person: colour by flag, NO_COLOR and terminal (a real pty for "auto"), the
table by default on a terminal, ``--output`` that is a format's name, and options spelt out.

Runs probe loopback only, with a loopback DNS server nothing answers on.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from amlprobe.cli import COMMANDS, build_parser
from probe.formats import FORMATS
from tests.helpers.cli import AMLPROBE, ENV
from tests.helpers.cli import on_a_terminal as run_on_a_terminal
from tests.helpers.ports import free_port, listening_socket

ESC = "\x1b["


@pytest.fixture
def target() -> Iterator[list[str]]:
    with listening_socket() as s:
        yield ["--target", f"tcp://127.0.0.1:{s.getsockname()[1]}", "--dns-server", f"127.0.0.1:{free_port()}"]


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in ENV.items() if k not in ("NO_COLOR", "TERM")}
    return {**env, "TERM": "xterm", **extra}


def on_a_terminal(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """amlprobe with its standard output on a pseudo-terminal: (exit code, what the terminal got)."""
    code, _, screen = run_on_a_terminal(*args, terminal="stdout", env=_env(env or {}))
    return code, screen


def in_a_pipe(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AMLPROBE, *args], capture_output=True, text=True, timeout=60, env=_env(env or {}), cwd=cwd, check=False
    )


# --- colour ------------------------------------------------------------------------------------


def test_a_terminal_gets_a_coloured_table_by_default(target: list[str]) -> None:
    code, screen = on_a_terminal("check", *target)
    assert code == 0
    assert screen.startswith(f"{ESC}32mOK: ") and ESC in screen.splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--color", "never"], {}),
        (["--no-color"], {}),
        ([], {"NO_COLOR": "1"}),
        ([], {"TERM": "dumb"}),
    ],
    ids=["--color never", "--no-color", "NO_COLOR", "TERM=dumb"],
)
def test_no_colour_on_a_terminal_when_told(target: list[str], args: list[str], env: dict[str, str]) -> None:
    code, screen = on_a_terminal("check", *target, *args, env=env)
    assert code == 0 and screen.startswith("OK: ")
    assert ESC not in screen


def test_an_empty_no_color_is_unset(target: list[str]) -> None:
    # https://no-color.org: "when present and not an empty string".
    code, screen = on_a_terminal("check", *target, env={"NO_COLOR": ""})
    assert code == 0 and screen.startswith(f"{ESC}32mOK: ")


@pytest.mark.parametrize("env", [{}, {"NO_COLOR": "1"}], ids=["plain", "NO_COLOR"])
def test_color_always_colours_a_pipe_too_and_wins_over_no_color(target: list[str], env: dict[str, str]) -> None:
    out = in_a_pipe("check", *target, "--format", "table", "--color", "always", env=env)
    assert out.returncode == 0 and out.stdout.startswith(f"{ESC}32mOK: ")


def test_a_pipe_gets_json_and_no_colour(target: list[str]) -> None:
    out = in_a_pipe("check", *target)
    assert out.returncode == 0 and out.stdout.startswith("{") and ESC not in out.stdout
    table = in_a_pipe("check", *target, "--format", "table")
    assert table.stdout.startswith("OK: ") and ESC not in table.stdout


# The fewest arguments each subcommand parses with.
REQUIRED = {"diff": ["old.json", "new.json"]}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("when", ["auto", "always", "never"])
def test_every_subcommand_takes_color(command: str, when: str) -> None:
    args = build_parser().parse_args([command, *REQUIRED.get(command, []), "--color", when])
    assert args.color == when


# --- one error prefix, options spelt out --------------------------------------------------------


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_says_amlprobe_error_in_one_line(command: str) -> None:
    out = in_a_pipe(command, *REQUIRED.get(command, []), "--bogus")
    assert out.returncode == 3
    assert out.stderr == "amlprobe: error: unrecognized arguments: --bogus\n"


@pytest.mark.parametrize(
    ("args", "abbreviated"),
    [
        (["check", "--form", "json"], "--form"),
        (["check", "--time", "1"], "--time"),
        (["plan", "--regio", "eastus"], "--regio"),
        (["lab", "--scen", "healthy"], "--scen"),
        (["schema", "--col", "never"], "--col"),
    ],
)
def test_an_abbreviated_option_is_refused(target: list[str], args: list[str], abbreviated: str) -> None:
    extra = target if args[0] == "check" else []
    out = in_a_pipe(*args, *extra)
    assert out.returncode == 3, out.stdout[:300]
    (line,) = out.stderr.splitlines()
    assert line.startswith("amlprobe: error: unrecognized arguments: ") and abbreviated in line


# --- --output that names a format ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["table", "json", "prometheus"])
def test_output_named_like_a_format_means_format(target: list[str], tmp_path: Path, name: str) -> None:
    out = in_a_pipe("check", *target, "--output", name, cwd=tmp_path)
    assert out.returncode == 3
    assert out.stderr == (
        f"amlprobe: error: --output {name}: did you mean --format {name}? --output names the file to write;"
        f" for a file called {name}, write ./{name}\n"
    )
    assert list(tmp_path.iterdir()) == []  # before issue 11: a file named "table"


def test_output_named_like_an_az_format_says_there_is_none(target: list[str], tmp_path: Path) -> None:
    out = in_a_pipe("check", *target, "--output", "tsv", cwd=tmp_path)
    assert out.returncode == 3 and f"amlprobe has no tsv format (--format {'|'.join(sorted(FORMATS))})" in out.stderr


def test_a_file_called_table_is_one_dot_slash_away(target: list[str], tmp_path: Path) -> None:
    out = in_a_pipe("check", *target, "--output", "./table", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "table").read_text().startswith("{")


def test_the_lab_refuses_output_table_too(tmp_path: Path) -> None:
    out = in_a_pipe("lab", "--output", "table", cwd=tmp_path)
    assert out.returncode == 3 and "did you mean --format table?" in out.stderr
    assert list(tmp_path.iterdir()) == []
