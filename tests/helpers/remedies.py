"""Check that a finding's fixes paste: each command is valid bash once its <PLACEHOLDERS> are filled."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterable

from probe.model import Finding, Remediation

# Anything in angle brackets; a placeholder proper is <LIKE_THIS>: upper case, digits, underscores.
_BRACKETED = re.compile(r"<([^<>]+)>")
_PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*")


def commands_of(findings: Iterable[Finding]) -> set[str]:
    return {c for f in findings for r in f.remediation for c in r.commands}


def assert_explained(remediation: Remediation) -> None:
    """Every placeholder of the commands is <LIKE_THIS> and named (explained) in the remedy's text."""
    for command in remediation.commands:
        for word in _BRACKETED.findall(command):
            assert _PLACEHOLDER.fullmatch(word), f"placeholder <{word}> is not <LIKE_THIS> in {command}"
            assert f"<{word}>" in remediation.text, f"<{word}> is not explained in: {remediation.text}"


def assert_pastes(commands: Iterable[str]) -> None:
    """``bash -n`` on every command with its placeholders filled (never run: it would leave the machine). A
    placeholder is one word, <LIKE_THIS>, never a phrase."""
    commands = list(commands)
    assert commands
    for command in commands:
        filled = command
        for word in set(_BRACKETED.findall(command)):
            assert _PLACEHOLDER.fullmatch(word), f"placeholder <{word}> in {command}"
            filled = filled.replace(f"<{word}>", "X")
        out = subprocess.run(["bash", "-n", "-c", filled], capture_output=True, text=True, timeout=10, check=False)
        assert out.returncode == 0, f"bash -n: {out.stderr.strip()} in: {command}"
        shlex.split(filled)
