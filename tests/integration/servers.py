"""Real servers on loopback for integration tests: MLflow tracking server and an S3 server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _wait_ready(server: Server, probe: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.url} exited early:\n{server.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(server.url + probe, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise RuntimeError(
        f"{server.url} not ready after {timeout}s:\n{server.log.read_text()[-3000:]}"
    )


@contextmanager
def serve(
    argv: list[str],
    *,
    port: int,
    probe: str,
    log: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 180,
) -> Iterator[Server]:
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_ready(server, probe, timeout)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def s3_server(workdir: Path) -> Iterator[Server]:
    """moto's S3-compatible server (in memory)."""
    port = free_port()
    argv = [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with serve(argv, port=port, probe="/moto-api/", log=workdir / "s3.log") as server:
        yield server


@contextmanager
def mlflow_server(workdir: Path, env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """A real MLflow tracking server: sqlite backend, proxied artifacts on local disk."""
    port = free_port()
    argv = [
        str(VENV_BIN / "mlflow"), "server",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
        "--artifacts-destination", str(workdir / "mlflow-artifacts"),
    ]  # fmt: skip
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}
    with serve(argv, port=port, probe="/health", log=workdir / "mlflow.log", env=env) as server:
        yield server
