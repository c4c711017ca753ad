"""The engine knows nothing of Azure: no verdict title, label key, expectation text or comment of it names it.

What Azure ML needs lives in checks/ and reaches the engine as values from the composition root
(amlprobe.cli): a planner, a ReportStyle, workspace flags.
"""

from __future__ import annotations

import re
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "probe"


def test_no_file_of_the_engine_says_azure() -> None:
    files = sorted(p for p in ENGINE.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert any(p.name == "cli.py" for p in files)  # the walk sees the engine
    hits = [
        f"{path.relative_to(ENGINE.parent)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search("azure", line, re.IGNORECASE)
    ]
    assert hits == [], "\n".join(hits)
