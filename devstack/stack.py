"""The local serving stack as context managers: KServe's kserve-sklearnserver and the transformer.

    with serving_stack(bundle_dir, work_dir) as stack:
        httpx.post(stack.infer_url, headers=stack.auth_header(), json=...)

Everything binds or talks to 127.0.0.1 only (kserve's ModelServer itself listens on all
interfaces: its uvicorn host is fixed to 0.0.0.0 in kserve 0.21). Integration tests and
benchmarks use the same functions.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from devstack.processes import (
    ManagedProcess,
    Progress,
    StackError,
    free_port,
    start_process,
    wait_until_ok,
)
from model.bundle import MODEL_DIR
from transformer.settings import PredictorProtocol

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "churn"
# How the transformer calls the runtime, as the chart's default does in the pod: v2 REST JSON,
# the cheaper hop at one row per request (bench/results/serving.md).
DEFAULT_PROTOCOL: PredictorProtocol = "v2"
READY_TIMEOUT_SECONDS = 180.0


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class Service:
    name: str
    url: str
    process: ManagedProcess
    grpc_port: int | None = None  # its v2 gRPC endpoint on 127.0.0.1, if it serves one

    def predictor_host(self, protocol: PredictorProtocol) -> str:
        """host:port of its v2 gRPC or REST endpoint, as the transformer's --predictor_host."""
        if protocol == "v2":
            return self.url.removeprefix("http://")
        if self.grpc_port is None:
            raise StackError(f"{self.name} serves no gRPC port")
        return f"127.0.0.1:{self.grpc_port}"


@dataclass(frozen=True)
class Stack:
    predictor: Service
    transformer: Service
    tokens: dict[str, str]
    tokens_file: Path
    bundle_dir: Path
    model_name: str = MODEL_NAME
    work_dir: Path = field(default_factory=Path.cwd)

    @property
    def infer_url(self) -> str:
        return f"{self.transformer.url}/v2/models/{self.model_name}/infer"

    def auth_header(self, token_name: str | None = None) -> dict[str, str]:
        name = token_name or next(iter(self.tokens))
        return {"authorization": f"Bearer {self.tokens[name]}"}


@contextmanager
def _until_stopped(
    process: ManagedProcess, port: int, ready_path: str, timeout: float, progress: Progress
) -> Iterator[Service]:
    """Yield the service once ``ready_path`` answers 200; stop the process on the way out."""
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ok(process, url + ready_path, timeout, progress)
        yield Service(process.name, url, process)
    finally:
        process.stop()


def _kserve_version() -> str:
    """The pinned KServe release (hack/versions.env), whose sklearnserver package we run."""
    for line in (REPO_ROOT / "hack/versions.env").read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "KSERVE_VERSION":
            return value.strip()
    raise StackError("KSERVE_VERSION missing from hack/versions.env")


def sklearnserver_package_dir() -> Path:
    """KServe's sklearnserver package, where hack/upstream.sh looks for it (never vendored)."""
    cache = Path(os.environ.get("CHURN_CACHE", Path.home() / ".cache/churn-serving"))
    candidates = [
        os.environ.get("CHURN_UPSTREAM_DIR", ""),
        REPO_ROOT.parent / "shared/upstream",
        cache / "upstream",
    ]
    relative = Path(f"kserve-{_kserve_version()}/python/sklearnserver")
    for candidate in filter(None, map(str, candidates)):
        package = Path(candidate) / relative
        if (package / "sklearnserver/__main__.py").is_file():
            return package
    raise StackError(
        f"KServe's sklearnserver package ({relative}) not found: run `make fetch-upstream` "
        "or set CHURN_UPSTREAM_DIR"
    )


def venv_executable(variable: str, default: str, what: str, setup: str) -> Path:
    """An executable of one of the project's venvs: $variable, else ``default`` under the repo."""
    executable = Path(os.environ.get(variable, REPO_ROOT / default))
    if not executable.exists():
        raise StackError(f"{what} not found at {executable}: run `{setup}`")
    return executable


def sklearnserver_python() -> Path:
    return venv_executable(
        "CHURN_SKLEARNSERVER_PYTHON",
        ".venv-sklearnserver/bin/python",
        "kserve-sklearnserver's venv",
        "make venv",
    )


@contextmanager
def sklearnserver(
    bundle_dir: Path,
    work_dir: Path,
    *,
    model_name: str = MODEL_NAME,
    progress: Progress = _quiet,
    timeout: float = READY_TIMEOUT_SECONDS,
) -> Iterator[Service]:
    """KServe's kserve-sklearnserver serving the bundle's model/ directory with predict_proba,
    started as the InferenceService starts it in the pod (same package, same locked versions).
    """
    port, grpc_port = free_port(), free_port()
    progress(f"starting kserve-sklearnserver on 127.0.0.1:{port} (gRPC {grpc_port})")
    process = start_process(
        "kserve-sklearnserver",
        [
            str(sklearnserver_python()),
            "-m",
            "sklearnserver",
            f"--model_dir={(bundle_dir / MODEL_DIR).resolve()}",
            f"--model_name={model_name}",
            f"--http_port={port}",
            f"--grpc_port={grpc_port}",
        ],
        log_path=work_dir / "logs/kserve-sklearnserver.log",
        cwd=work_dir,
        env={"PREDICT_PROBA": "true", "PYTHONPATH": str(sklearnserver_package_dir())},
    )
    with _until_stopped(process, port, f"/v2/models/{model_name}/ready", timeout, progress) as s:
        yield replace(s, grpc_port=grpc_port)


def write_tokens(path: Path, tokens: Mapping[str, str]) -> None:
    """Replace the tokens file atomically, as a Secret volume update does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    staging.write_text(json.dumps(dict(tokens)))
    staging.chmod(0o600)
    staging.replace(path)


def new_token() -> str:
    return secrets.token_urlsafe(24)


@contextmanager
def transformer(
    bundle_uri: str,
    predictor_host: str,
    work_dir: Path,
    tokens_file: Path,
    *,
    protocol: PredictorProtocol = DEFAULT_PROTOCOL,
    model_name: str = MODEL_NAME,
    port: int = 0,
    env: Mapping[str, str] | None = None,
    wait_for: str = "/v2/health/ready",
    progress: Progress = _quiet,
    timeout: float = READY_TIMEOUT_SECONDS,
) -> Iterator[Service]:
    """``python -m transformer`` in front of ``predictor_host`` (host:port), called over
    ``protocol`` (kserve's --predictor_protocol: grpc-v2 or v2 REST).

    ``wait_for`` is the path that must answer 200 before this yields: the readiness path by
    default, "/v2/health/live" to start it in front of a predictor that is down.
    """
    port = port or free_port()
    settings = {
        "CHURN_TRANSFORMER_BUNDLE_URI": bundle_uri,
        "CHURN_TRANSFORMER_TOKENS_FILE": str(tokens_file),
        "PYTHONPATH": str(REPO_ROOT),
        **(env or {}),
    }
    progress(f"starting the transformer on port {port}, predictor {predictor_host} ({protocol})")
    process = start_process(
        "transformer",
        [
            sys.executable,
            "-m",
            "transformer",
            "--model_name",
            model_name,
            "--predictor_host",
            predictor_host,
            "--predictor_protocol",
            protocol,
            "--http_port",
            str(port),
        ],
        log_path=work_dir / "logs/transformer.log",
        cwd=work_dir,
        env=settings,
    )
    with _until_stopped(process, port, wait_for, timeout, progress) as service:
        yield service


@contextmanager
def serving_stack(
    bundle_dir: Path,
    work_dir: Path,
    *,
    tokens: Mapping[str, str] | None = None,
    transformer_port: int = 0,
    transformer_env: Mapping[str, str] | None = None,
    model_name: str = MODEL_NAME,
    progress: Progress = _quiet,
) -> Iterator[Stack]:
    """kserve-sklearnserver, then the transformer in front of it calling it as the chart does
    by default (DEFAULT_PROTOCOL), both reading the same bundle directory as they share
    /mnt/models in the pod; stopped in reverse order."""
    work_dir.mkdir(parents=True, exist_ok=True)
    tokens = dict(tokens or {"demo": new_token()})
    tokens_file = work_dir / "secrets/tokens.json"
    write_tokens(tokens_file, tokens)
    with ExitStack() as stack:
        predictor = stack.enter_context(
            sklearnserver(bundle_dir, work_dir, model_name=model_name, progress=progress)
        )
        front = stack.enter_context(
            transformer(
                str(bundle_dir),
                predictor.predictor_host(DEFAULT_PROTOCOL),
                work_dir,
                tokens_file,
                model_name=model_name,
                port=transformer_port,
                env=transformer_env,
                progress=progress,
            )
        )
        yield Stack(predictor, front, tokens, tokens_file, bundle_dir, model_name, work_dir)


def train_bundle(
    work_dir: Path, *, rows: int = 2000, seed: int = 42, progress: Progress = _quiet
) -> Path:
    """Synthetic data -> ``python -m training train`` -> the committed bundle directory."""
    data = work_dir / "data/customers.csv"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        # A local MLflow store beside the bundles, never a server from the environment.
        "MLFLOW_TRACKING_URI": f"sqlite:///{work_dir / 'mlflow.db'}",
    }
    progress(f"generating {rows} synthetic customers")
    _run_training(
        ["generate", "--rows", str(rows), "--seed", str(seed), "--output", str(data)], env, progress
    )
    progress("training (validate, cross-validate, fit, write the bundle, register in MLflow)")
    summary = _run_training(
        ["train", "--data", str(data), "--output", str(work_dir / "bundles")], env, progress
    )
    progress(
        f"trained version {summary['version']}: test ROC AUC {summary['test_roc_auc']:.3f}, "
        f"threshold {summary['threshold']:.3f}"
    )
    return Path(str(summary["bundle_uri"]))


def _run_training(
    arguments: list[str], env: Mapping[str, str], progress: Progress
) -> dict[str, Any]:
    """Run one training command, relaying its log lines as progress; its JSON result."""
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "training", *arguments],
        env=dict(env),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if process.stderr is None or process.stdout is None:  # never: both are PIPEs
        raise StackError("training output pipes missing")
    tail: list[str] = []
    for line in process.stderr:
        tail = [*tail[-40:], line.rstrip()]
        if " INFO " in line:
            progress("  " + line.rstrip().split(" INFO ", 1)[1])
    output = process.stdout.read()
    if process.wait() != 0:
        raise StackError(
            f"python -m training {arguments[0]} failed ({process.returncode}):\n" + "\n".join(tail)
        )
    result: dict[str, Any] = json.loads(output)
    return result
