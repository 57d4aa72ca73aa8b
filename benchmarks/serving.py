"""The app in a child process, as it is deployed: ``python -m crs.app`` on a free 127.0.0.1 port,
and its peak resident memory (the load benchmark and the suite's rss and load parts)."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVER_START_SECONDS = 300  # the app must answer HTTP within this long


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verifying SSL context for every client of the run (``Client(url, ssl_verify=...)``:
    gradio_client passes it on to httpx, which takes an ``SSLContext`` as ``verify``). gradio_client
    opens an httpx client for each request, and each one built its own context by loading the CA
    bundle (about half of the load generator's CPU, measured with py-spy), time that the server under
    test then lacked on a shared machine (benchmarks.load, benchmarks.chat_latency). Certificates are
    still checked when the URL is https."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []



def proc_status(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS of a process, in KiB ({} once it is gone)."""
    out = {}
    for line in read_lines(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0])
    return out


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (from /proc/*/stat)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rss_report(pid: int) -> dict:
    status = proc_status(pid)
    children = []
    for child in descendants(pid):
        child_status = proc_status(child)
        cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip() \
            if Path(f"/proc/{child}/cmdline").exists() else ""
        children.append({"pid": child, "cmdline": cmd, "peak_rss_mib": round(child_status.get("VmHWM", 0) / 1024, 1)})
    return {
        "peak_rss_mib": round(status.get("VmHWM", 0) / 1024, 1),
        "peak_rss_gib": round(status.get("VmHWM", 0) / 2**20, 3),
        "rss_now_mib": round(status.get("VmRSS", 0) / 1024, 1),
        "child_processes": children,
    }


@dataclass
class AppServer:
    """``python -m crs.app`` on a free 127.0.0.1 port, in its own process group; a context manager
    that stops it (SIGINT, then SIGTERM, then SIGKILL) on the way out, errors included."""

    checkpoint: Path
    threads: int
    app_args: tuple[str, ...] = ()  # more options of crs.app (e.g. --encoder-precision bf16)
    process: subprocess.Popen | None = None
    url: str = ""
    start_seconds: float = 0.0
    log_file: Any = None
    info: dict = field(default_factory=dict)

    def __enter__(self) -> "AppServer":
        from crs.app import free_port
        from crs.paths import PROJECT_ROOT

        port = free_port()
        env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   OMP_NUM_THREADS=str(self.threads), PYTHONUNBUFFERED="1")
        env["NO_PROXY"] = env["no_proxy"] = ",".join(filter(None, [env.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
        command = [sys.executable, "-m", "crs.app", "--host", "127.0.0.1", "--port", str(port), "--checkpoint", str(self.checkpoint), *self.app_args]
        self.log_file = tempfile.TemporaryFile(mode="w+")
        started = time.perf_counter()
        self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        self.url = f"http://127.0.0.1:{port}/"
        log(f"app: started pid {self.process.pid} ({' '.join(command[1:])}); waiting for {self.url}")
        try:
            self._wait(started)
        except BaseException:
            self.__exit__()
            raise
        self.start_seconds = time.perf_counter() - started
        log(f"app: answering after {self.start_seconds:.1f} s")
        self.info = {"command": " ".join(["python", *command[1:]]), "pid": self.process.pid, "url": self.url,
                     "start_seconds": round(self.start_seconds, 1), "omp_num_threads": self.threads,
                     "measured_process": f"pid {self.process.pid}: the Python process serving (python -m crs.app)"}
        return self

    def _wait(self, started: float) -> None:
        while time.perf_counter() - started < SERVER_START_SECONDS:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited with status {self.process.returncode} before serving:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the app did not answer {self.url} within {SERVER_START_SECONDS} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        if self.log_file is None:
            return ""
        self.log_file.flush()
        self.log_file.seek(0)
        return self.log_file.read()[-chars:]

    def rss(self) -> dict:
        return rss_report(self.process.pid)

    def __exit__(self, *exc) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            for sig, wait in ((signal.SIGINT, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)
                try:
                    process.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            log(f"app: pid {process.pid} stopped (status {process.returncode})")
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # anything it left in its own process group
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None
