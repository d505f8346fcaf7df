"""Drives load with wrk (C, event loop, one thread) replaying prepared raw HTTP requests.

A Python client would spend the CPU it is supposed to measure; wrk needs a few percent of a
core at these rates, and its own CPU time is recorded too (rusage of the wrk child).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WRK_SCRIPT = Path(__file__).with_name("wrk.lua")
# Generous, so a slow answer is measured as latency instead of being dropped as an error.
REQUEST_TIMEOUT_SECONDS = 30


@dataclass(frozen=True, slots=True)
class HttpRequest:
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    seconds: float
    latency_ms: dict[str, float]
    errors: dict[str, int]
    loadgen_cpu_seconds: float

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def raw_http(request: HttpRequest, host: str) -> bytes:
    """The exact bytes of one keep-alive HTTP/1.1 POST."""
    head = [
        f"POST {request.path} HTTP/1.1",
        f"Host: {host}",
        f"Content-Length: {len(request.body)}",
        *(f"{name}: {value}" for name, value in request.headers.items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + request.body


def prepare(requests: list[HttpRequest], host: str, directory: Path) -> Path:
    """Write the requests as numbered files for wrk.lua; returns the directory."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for index, request in enumerate(requests):
        (directory / f"{index:05d}.http").write_bytes(raw_http(request, host))
    return directory


def run_wrk(
    wrk: str, base_url: str, prepared: Path, *, concurrency: int, seconds: float
) -> LoadResult:
    """One closed-loop run: ``concurrency`` keep-alive connections, each sending its next
    request as soon as the previous answer arrived, for ``seconds``."""
    output = prepared.with_suffix(".json")
    output.unlink(missing_ok=True)
    process = subprocess.Popen(
        [wrk, "--threads", "1", "--connections", str(concurrency),
         "--duration", f"{max(1, round(seconds))}s", "--timeout", f"{REQUEST_TIMEOUT_SECONDS}s",
         "--script", str(WRK_SCRIPT), base_url + "/"],
        env={**os.environ, "BENCH_WRK_REQUESTS": str(prepared), "BENCH_WRK_OUTPUT": str(output)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    console = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not output.exists():
        raise RuntimeError(f"wrk failed (exit {os.waitstatus_to_exitcode(status)}):\n{console}")
    summary: dict[str, Any] = json.loads(output.read_text())
    return LoadResult(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        latency_ms={k: round(v / 1000, 3) for k, v in summary["latency_us"].items()},
        errors=summary["errors"],
        loadgen_cpu_seconds=usage.ru_utime + usage.ru_stime,
    )
