"""gunicorn on loopback for the length of a `with` block, and what its workers use."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The forum the servers run: BENCH_APP_ROOT measures another checkout (a "before" for a
# change), as bench/run.py does for its own servers.
APP_ROOT = Path(os.environ.get("BENCH_APP_ROOT") or ROOT).resolve()
GUNICORN = Path(sys.executable).parent / "gunicorn"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The project's gunicorn.conf.py with 2 sync workers, bound to 127.0.0.1 only."""

    def __init__(
        self,
        app: str,
        env: dict[str, str],
        log: Path,
        workers: int = 2,
        ready_path: str = "/healthz",
        pythonpath: str | None = None,
        root: Path = ROOT,
    ) -> None:
        self.port = free_port()
        self.root = root
        self.app = app
        self.log = log
        self.ready_path = ready_path
        self.pythonpath = pythonpath
        self.env = {
            **os.environ,
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            # No recycling in the middle of a measurement (and VmHWM is per process).
            "GUNICORN_MAX_REQUESTS": "0",
            "GUNICORN_LOGLEVEL": "warning",
        }
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        cmd = [str(GUNICORN), "-c", str(self.root / "gunicorn.conf.py")]
        if self.pythonpath:
            cmd += ["--pythonpath", self.pythonpath]
        cmd.append(self.app)
        self.command = " ".join(
            ["gunicorn"] + [a.replace(str(self.root) + "/", "") for a in cmd[1:]]
        )
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.root,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", self.ready_path)
                if conn.getresponse().status == 200 and len(self.workers()) >= 1:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer within {timeout} s; see {self.log}")

    def workers(self) -> list[int]:
        """The worker processes: the master's children."""
        if self.proc is None:
            return []
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def cpu_seconds(self) -> float:
        """User and system CPU time of all workers so far (robust to other load)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.workers():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    def memory(self) -> list[dict[str, int]]:
        """VmHWM (peak resident set) and VmRSS of each worker, in kB."""
        out = []
        for pid in self.workers():
            fields = {}
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    fields[key] = int(value.split()[0])
            out.append({"pid": pid, **fields})
        return out

    def __exit__(self, *exc: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
