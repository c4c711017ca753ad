"""Prober modules are imported by one thread, off the event loop (issue 13)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from probe.importer import import_in_thread, preload


@pytest.fixture
def slow_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package of modules that take 0.2 s to import, on sys.path for this test only."""
    name = f"amlprobe_slow_{tmp_path.name.replace('-', '_')}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for mod in ("first", "second", "broken"):
        body = "import time\ntime.sleep(0.2)\nVALUE = 1\n" if mod != "broken" else "raise ImportError('no')\n"
        (package / f"{mod}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for key in [k for k in sys.modules if k.startswith(name)]:
        del sys.modules[key]


async def test_the_event_loop_keeps_running_while_a_module_imports(slow_modules: str) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.ensure_future(tick())
    module = await import_in_thread(f"{slow_modules}.first")
    ticker.cancel()
    assert module.VALUE == 1
    assert ticks >= 5, "the loop was blocked by the import"


async def test_a_cancelled_wait_does_not_cancel_the_import_for_others(slow_modules: str) -> None:
    waiting = asyncio.ensure_future(import_in_thread(f"{slow_modules}.second"))
    await asyncio.sleep(0.05)
    waiting.cancel()
    module = await import_in_thread(f"{slow_modules}.second")
    assert module.VALUE == 1
    # ...and the import thread still serves what comes next.
    preload([f"{slow_modules}.first"])
    assert (await import_in_thread(f"{slow_modules}.first")).VALUE == 1


async def test_a_failed_import_is_raised_and_tried_again_next_time(slow_modules: str) -> None:
    for _ in range(2):
        with pytest.raises(ImportError, match="no"):
            await import_in_thread(f"{slow_modules}.broken")
