"""How to run this program again from here, as a command a person can paste.

A hint such as "now try: amlprobe lab --scenario X" must work word for word where it is printed. Right
after the quick start (``python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/amlprobe lab``)
the venv is not activated, so ``amlprobe`` is not on PATH: the hint names the program as it was
invoked (``.venv/bin/amlprobe``), and the bare name only when PATH finds that same program.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence


def _same_program(a: str, b: str) -> bool:
    """Whether two paths name the same program. The last component is not resolved: a venv's python is
    a symlink to the system's, yet runs with the venv's packages only when called by its own path."""
    if os.path.basename(a) != os.path.basename(b):
        return False
    try:
        return os.path.samefile(os.path.dirname(a) or ".", os.path.dirname(b) or ".")
    except OSError:
        return False


def _as_typed(path: str, env: Mapping[str, str], cwd: str) -> str:
    """``path`` as a word a shell runs it by from ``cwd``: its name when PATH finds this very file,
    else the path as given (``./`` before a bare relative name)."""
    name = os.path.basename(path)
    found = shutil.which(name, path=env.get("PATH", os.defpath))
    if found and _same_program(found, os.path.join(cwd, path)):
        return name
    if os.path.isabs(path):
        return path
    shown = os.path.normpath(path)
    return shown if os.sep in shown else f".{os.sep}{shown}"


def command(
    *,
    argv0: str | None = None,
    executable: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    module: str = "amlprobe",
) -> str:
    """The command that runs this program again, shell-quoted: ``amlprobe``, ``.venv/bin/amlprobe`` or
    ``.venv/bin/python -m amlprobe``."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    env = os.environ if env is None else env
    cwd = os.getcwd() if cwd is None else cwd
    words: Sequence[str]
    if os.path.basename(argv0) in ("__main__.py", "-m", "-c", "") or not os.path.exists(os.path.join(cwd, argv0)):
        # python -m amlprobe (argv[0] is the module's __main__.py), or nothing to go by.
        words = [_as_typed(executable, env, cwd), "-m", module]
    else:
        words = [_as_typed(argv0, env, cwd)]
    return shlex.join(words)
