"""probe.invocation: a hint names this program the way a shell here would find it again."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from probe.invocation import command


def _program(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('#!/bin/sh\necho ran "$0"\n')
    path.chmod(0o755)
    return path


def test_right_after_the_quick_start_it_is_the_venv_path(tmp_path: Path) -> None:
    _program(tmp_path / ".venv" / "bin" / "amlprobe")
    env = {"PATH": "/usr/bin:/bin"}  # the venv is not activated
    assert command(argv0=".venv/bin/amlprobe", env=env, cwd=str(tmp_path)) == ".venv/bin/amlprobe"
    # Called by its full path, named by it.
    full = str(tmp_path / ".venv" / "bin" / "amlprobe")
    assert command(argv0=full, env=env, cwd=str(tmp_path)) == full


def test_the_bare_name_only_when_path_finds_this_very_program(tmp_path: Path) -> None:
    mine = _program(tmp_path / "venv" / "bin" / "amlprobe")
    other = _program(tmp_path / "elsewhere" / "amlprobe")
    assert command(argv0=str(mine), env={"PATH": str(mine.parent)}, cwd="/") == "amlprobe"
    assert command(argv0=str(mine), env={"PATH": str(other.parent)}, cwd="/") == str(mine)


def test_python_m_names_the_interpreter_not_a_symlinked_twin(tmp_path: Path) -> None:
    # A venv's python is a symlink to the system's, but only its own path runs with the venv's packages.
    real = _program(tmp_path / "usr" / "bin" / "python3")
    venv_python = tmp_path / ".venv" / "bin" / "python3"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to(real)
    main = str(tmp_path / "src" / "amlprobe" / "__main__.py")
    env = {"PATH": str(real.parent)}
    got = command(argv0=main, executable=str(venv_python), env=env, cwd=str(tmp_path))
    assert got == f"{venv_python} -m amlprobe"
    venv_env = {"PATH": str(venv_python.parent)}
    assert command(argv0=main, executable=str(venv_python), env=venv_env, cwd=str(tmp_path)) == "python3 -m amlprobe"


def test_a_path_with_spaces_is_quoted_and_runs(tmp_path: Path) -> None:
    where = tmp_path / "my clone"
    _program(where / ".venv" / "bin" / "amlprobe")
    hint = command(argv0="my clone/.venv/bin/amlprobe", env={"PATH": "/usr/bin:/bin"}, cwd=str(tmp_path))
    assert hint == "'my clone/.venv/bin/amlprobe'"
    ran = subprocess.run(["sh", "-c", hint], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=10)
    assert ran.stdout.startswith("ran ")


def test_a_program_in_the_working_directory_gets_dot_slash(tmp_path: Path) -> None:
    _program(tmp_path / "amlprobe")
    assert command(argv0="amlprobe", env={"PATH": "/usr/bin"}, cwd=str(tmp_path)) == f".{os.sep}amlprobe"
