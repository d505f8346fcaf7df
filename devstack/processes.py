"""Child processes that always go away: own session, log file, SIGTERM then SIGKILL.

Each child runs in its own session, so a terminal's Ctrl-C reaches only the parent, which
then stops the children in order. On Linux the children also get SIGTERM if the parent dies
without cleaning up (PR_SET_PDEATHSIG), so even a killed parent leaves no orphans behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

Progress = Callable[[str], None]

_PR_SET_PDEATHSIG = 1
STOP_TIMEOUT_SECONDS = 15.0


class StackError(RuntimeError):
    """A process of the stack failed to start or to become ready."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _terminate_with_parent() -> None:
    """Runs in the child between fork and exec."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` s; the exit code."""
        if self.running():
            self._signal_group(signal.SIGTERM)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
        return self.popen.wait()

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)


def start_process(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
) -> ManagedProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(  # noqa: S603 - argv is built by this package, never by a shell
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            preexec_fn=_terminate_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )
    return ManagedProcess(name, popen, log_path)


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status of GET url, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback http
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def wait_until_ok(process: ManagedProcess, url: str, timeout: float, progress: Progress) -> None:
    """Poll ``url`` until it answers 200, reporting progress; fail fast if the process dies."""
    started = time.monotonic()
    last_report = started
    while True:
        if not process.running():
            raise StackError(
                f"{process.name} exited with code {process.popen.returncode} before it was "
                f"ready; last log lines ({process.log_path}):\n{process.log_tail()}"
            )
        if http_status(url) == 200:
            progress(f"{process.name} ready after {time.monotonic() - started:.1f} s")
            return
        now = time.monotonic()
        if now - started > timeout:
            raise StackError(
                f"{process.name} not ready at {url} after {timeout:.0f} s; last log lines "
                f"({process.log_path}):\n{process.log_tail()}"
            )
        if now - last_report >= 5:
            progress(f"waiting for {process.name} ({now - started:.0f} s) ...")
            last_report = now
        time.sleep(0.25)
