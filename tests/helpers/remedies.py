"""Check that a finding's fixes paste: each command is valid bash once its <placeholders> are filled."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterable

from probe.model import Finding

_PLACEHOLDER = re.compile(r"<([^<>]+)>")


def commands_of(findings: Iterable[Finding]) -> set[str]:
    return {c for f in findings for r in f.remediation for c in r.commands}


def assert_pastes(commands: Iterable[str]) -> None:
    """``bash -n`` on every command with its placeholders filled (never run: it would leave the machine). A
    placeholder is one word of letters, digits and '-', never a phrase."""
    commands = list(commands)
    assert commands
    for command in commands:
        filled = command
        for word in set(_PLACEHOLDER.findall(command)):
            assert word.replace("-", "").isalnum(), f"placeholder <{word}> in {command}"
            filled = filled.replace(f"<{word}>", "X")
        subprocess.run(["bash", "-n", "-c", filled], check=True, timeout=10)
        shlex.split(filled)
