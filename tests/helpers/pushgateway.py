"""A real Prometheus Pushgateway on 127.0.0.1, for tests that push metrics.

Debian's build defaults ``--persistence.file`` to /var/lib/...; it is set empty here so the
gateway keeps everything in memory and a test leaves nothing behind.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.helpers.ports import free_port

BINARY = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"
START_TIMEOUT = 10.0


@dataclass
class Pushgateway:
    url: str

    def get(self, path: str) -> str:
        # A handler without proxies: the request must stay on loopback whatever the environment says.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(self.url + path, timeout=5) as resp:
            body: bytes = resp.read()
        return body.decode()


@pytest.fixture
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pushgateway]:
    if not shutil.which(BINARY):
        pytest.skip("prometheus-pushgateway is not installed")
    port = free_port()
    log = tmp_path_factory.mktemp("pushgateway") / "log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [BINARY, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file=", "--log.level=warn"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    gateway = Pushgateway(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                gateway.get("/-/ready")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"pushgateway did not start: {log.read_text()[-2000:]}")
                time.sleep(0.05)
        yield gateway
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
