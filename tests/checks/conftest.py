"""Every finding a rule makes in these tests carries only remedies its rule declares (and docs show)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from checks.diagnosis.base import Rule
from checks.remedies import PLACEHOLDERS
from probe.model import Finding, Remediation


def _shape_of(r: Remediation) -> tuple[str, str]:
    """What a remedy is, whatever values it carries: its kind and its first command's program and subcommands
    (``az network nsg rule create``), up to the first option or value."""
    if not r.commands:
        return r.kind, ""
    program, *words = r.commands[0].split()
    head = [program]
    for word in words:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        head.append(word)
    return r.kind, " ".join(head)


@pytest.fixture(autouse=True)
def remedies_are_declared(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    undeclared: list[str] = []
    finding = Rule.finding

    def checked(self: Rule, *args: object, **kwargs: object) -> Finding:
        made = finding(self, *args, **kwargs)  # type: ignore[arg-type]
        declared = {_shape_of(example(PLACEHOLDERS)) for example in self.remedies}
        kinds = {kind for kind, _ in declared}
        for remedy in made.remediation:
            kind, head = _shape_of(remedy)
            if kind not in kinds or (head and (kind, head) not in declared):
                undeclared.append(f"{self.id}: {kind} {head!r}")
        return made

    monkeypatch.setattr(Rule, "finding", checked)
    yield
    assert undeclared == [], "remedies a rule offers without declaring them in @rule(remedies=...)"
