"""The program's exit (probe.cli.run_program): the exit code, every byte of output, no interpreter teardown.

Run as real processes: what is tested is what happens after ``main`` returns.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers.cli import INPUTS
from tests.helpers.cli import NOT_AZURE_ENV as ENV


def program(
    argv: list[str], cwd: Path, *, env: dict[str, str] | None = None, stdout: int | None = None
) -> subprocess.CompletedProcess[str]:
    """``python ARGV`` with this tree importable; standard output captured unless ``stdout`` is given."""
    return subprocess.run(
        [sys.executable, *argv],
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**ENV, "PYTHONPATH": str(Path.cwd()), **(env or {})},
        timeout=60,
        check=False,
    )


def python(code: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return program(["-c", textwrap.dedent(code)], cwd, env=env)


def test_buffered_output_is_flushed_and_the_code_kept(tmp_path: Path) -> None:
    out = python(
        """
        import sys
        from probe.cli import run_program
        def main():
            sys.stdout.write("x" * 100_000)  # a pipe: block-buffered, nothing flushed yet
            sys.stderr.write("said")
            return 2
        run_program(main)
        """,
        tmp_path,
    )
    assert (out.returncode, len(out.stdout), out.stderr) == (2, 100_000, "said")


def test_system_exit_keeps_its_meaning(tmp_path: Path) -> None:
    zero = python("from probe.cli import run_program\nrun_program(lambda: exec('raise SystemExit'))", tmp_path)
    assert zero.returncode == 0
    said = python("from probe.cli import run_program\nrun_program(lambda: exec('raise SystemExit(\"bye\")'))", tmp_path)
    assert (said.returncode, said.stderr.strip()) == (1, "bye")  # as Python itself exits on a message


def test_the_import_thread_finishes_its_module_first(tmp_path: Path) -> None:
    # A module still loading in the import thread when main returns is finished, as a normal exit would
    # wait for it: no half-written bytecode, no import cut in the middle.
    (tmp_path / "slow_module.py").write_text(
        "import pathlib, time\ntime.sleep(0.3)\npathlib.Path('imported').write_text('done')\n"
    )
    out = python(
        """
        from probe.cli import run_program
        from probe.importer import preload
        def main():
            preload(["slow_module"])
            return 0
        run_program(main)
        """,
        tmp_path,
        env={"PYTHONPATH": f"{Path.cwd()}:{tmp_path}"},
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "imported").read_text() == "done"


def test_a_reader_that_is_gone_gets_no_complaint(tmp_path: Path) -> None:
    # `amlprobe plan | true`: nobody reads the plan. The last flush into the closed pipe must stay quiet.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        out = program(["-m", "amlprobe", "plan", *INPUTS], tmp_path, stdout=write_end)
    finally:
        os.close(write_end)
    # Exit 3 (probe.cli: a report that could not be delivered), and not a word of Python's on stderr.
    assert (out.returncode, out.stderr) == (3, ""), out


def test_the_console_script_and_module_are_the_same_program(tmp_path: Path) -> None:
    out = program(["-m", "amlprobe", "--version"], tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("amlprobe "), out
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert 'amlprobe = "amlprobe.cli:run"' in pyproject


def test_a_profiler_still_gets_to_write_its_data(tmp_path: Path) -> None:
    out = program(["-m", "cProfile", "-o", str(tmp_path / "plan.prof"), "-m", "amlprobe", "plan", *INPUTS], tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "plan.prof").stat().st_size > 0
