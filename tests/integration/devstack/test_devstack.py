"""`python -m devstack demo` and `up` as a user runs them: real training, real processes."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devstack.processes import http_status
from devstack.stack import REPO_ROOT

pytestmark = pytest.mark.integration


def devstack(*args: str) -> list[str]:
    return [sys.executable, "-m", "devstack", *args]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    work = tmp_path_factory.mktemp("demo")
    completed = subprocess.run(
        devstack("demo", "--work-dir", str(work), "--rows", "1500"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return completed, work


def test_demo_trains_serves_answers_and_stops(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    completed, work = demo
    assert completed.returncode == 0, completed.stdout + completed.stderr
    out = completed.stdout
    assert re.search(r"7590-VHVEG\s+0\.\d{4}\s+(yes|no)", out), out
    assert "HTTP 401" in out
    assert "HTTP 400" in out
    assert '"input": "Contract"' in out
    assert '"row": 0' in out
    assert out.rstrip().endswith("[devstack] stack stopped")
    # Both servers were real and are gone: their logs exist, their ports no longer answer.
    ports = re.findall(r"127\.0\.0\.1:(\d+)", out)
    assert ports
    for port in set(ports):
        assert http_status(f"http://127.0.0.1:{port}/v2/health/live", timeout=1) is None
    # kserve-sklearnserver registers its model with the server only after loading it.
    runtime_log = (work / "logs/kserve-sklearnserver.log").read_text()
    assert "Registering model: churn" in runtime_log
    # The transformer called the runtime over v2 REST JSON, as the chart's pods do by default.
    assert "predictor: http://127.0.0.1:" in (work / "logs/transformer.log").read_text()
    assert ", v2 REST, JSON\n" in (work / "logs/transformer.log").read_text()


def test_up_prints_a_working_curl_and_stops_on_sigterm(
    demo: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    _, demo_work = demo
    bundle = next((demo_work / "bundles/churn").iterdir())
    process = subprocess.Popen(
        devstack("up", "--bundle", str(bundle), "--port", "0", "--work-dir", str(tmp_path)),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 600
    curl = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.strip().startswith("curl "):
            curl = line.strip()
            break
    assert curl, "".join(lines)
    argv = shlex.split(curl)
    url = argv[2]
    token = next(a for a in argv if a.startswith("Authorization: Bearer ")).split()[-1]
    request_file = Path(argv[-1].removeprefix("@"))
    response = httpx.post(
        url, content=request_file.read_bytes(), headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["name"] == "churn_probability"

    process.send_signal(signal.SIGTERM)
    remaining, _ = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "stack stopped" in remaining
    assert http_status(url.split("/v2/")[0] + "/v2/health/live", timeout=1) is None
