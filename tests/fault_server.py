"""The hostile routes of tests/faults.py served by a process of their own.

`python -m tests.fault_server CANARY_PORT` installs every fault on a TestServer, prints one JSON
line {"port": ..., "targets": {fault name: article URL}} and serves until killed. Endless bodies
and slow drips then burn this process's CPU and GIL, not the one running the poller under test:
the mixed-run test stays deterministic on a loaded machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from tests.conftest import ROOT
from tests.faults import FAULTS
from tests.server import TestServer


def main(canary_port: int) -> None:
    server = TestServer()
    targets = {}
    for fault in FAULTS:
        target = fault.install(server, canary_port)
        targets[fault.name] = target if target.startswith("http") else server.url(target)
    print(json.dumps({"port": server.port, "targets": targets}), flush=True)
    server.httpd.serve_forever()


class FaultServer:
    """The parent's handle on a fault server process."""

    def __init__(self, canary_port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fault_server", str(canary_port)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self._first_line(self.proc.stdout)
        info = json.loads(line)
        self.port: int = info["port"]
        self.targets: dict[str, str] = info["targets"]

    def _first_line(self, stream: object, timeout: float = 30) -> str:
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.append(stream.readline()))  # type: ignore[attr-defined]
        reader.start()
        reader.join(timeout)
        if not got or not got[0]:
            self.stop()
            raise RuntimeError("the fault server did not start")
        return got[0]

    @property
    def allow(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


if __name__ == "__main__":
    main(int(sys.argv[1]))
