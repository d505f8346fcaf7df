"""Every networked system under test, started fresh on loopback for its own measurements.

The project's processes (kserve-sklearnserver, the transformer) start through devstack, exactly
as `make demo` and the integration tests start them. Only the peers that devstack has no use
for (`mlflow models serve`, MLServer, the full-Pipeline model files) live here.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import joblib
import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature

from devstack.processes import ManagedProcess, Progress, free_port, start_process
from devstack.stack import (
    MODEL_NAME,
    READY_TIMEOUT_SECONDS,
    Service,
    _until_stopped,
    new_token,
    sklearnserver,
    transformer,
    venv_executable,
    write_tokens,
)
from model.bundle import MODEL_PATH
from transformer.settings import PredictorProtocol

from .payloads import (
    Batch,
    MlflowWire,
    PandasV2Wire,
    PredictorWire,
    Reference,
    TransformerWire,
    Wire,
)

# The transformer's per-token rate limit is lifted: it would measure the limiter, not the chain.
UNLIMITED_RATE = {
    "CHURN_TRANSFORMER_RATE_LIMIT_PER_SECOND": "1000000000",
    "CHURN_TRANSFORMER_RATE_LIMIT_BURST": "1000000000",
}


PredictorServer = Callable[..., AbstractContextManager[Service]]


@dataclass(frozen=True)
class Hop:
    """How the transformer calls the runtime: --predictor_protocol, and its environment."""

    protocol: PredictorProtocol
    env: dict[str, str] = field(default_factory=dict)


GRPC_HOP = Hop("grpc-v2")
JSON_HOP = Hop("v2", {"CHURN_TRANSFORMER_PREDICTOR_ENCODING": "json"})
BINARY_HOP = Hop("v2", {"CHURN_TRANSFORMER_PREDICTOR_ENCODING": "binary"})


@dataclass(frozen=True)
class Running:
    """A started system: where to send requests, how to encode them, which processes to meter."""

    url: str
    wire: Wire
    processes: dict[str, ManagedProcess]


@dataclass(frozen=True)
class SystemSpec:
    id: str
    label: str
    role: str  # predictor | chain | peer (the floors run in-process, see bench/floor.py)
    transport: str
    start: Callable[[Path, Progress], AbstractContextManager[Running]]


def save_peer_models(reference: Reference, example: Batch, directory: Path) -> tuple[Path, Path]:
    """The full Pipeline twice: an MLflow model (pickle, predict_proba) for Peer A and a
    bundle-shaped directory (model/model.joblib) that mlserver() serves for Peer B.

    The MLflow model carries a signature inferred from rows as clients type them, as MLflow
    recommends: without one, a single-row frame whose TotalCharges is null reaches the
    Pipeline as an object column and fails.
    """
    mlflow_dir = directory / "peer-a-mlflow-model"
    example_frame = pd.DataFrame(example.records)
    mlflow.sklearn.save_model(
        reference.pipeline,
        str(mlflow_dir),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE,
        pyfunc_predict_fn="predict_proba",
        signature=infer_signature(example_frame, reference.pipeline.predict_proba(example.frame)),
        # Given, not inferred: inference would resolve the whole environment on every run.
        pip_requirements=["scikit-learn", "pandas", "numpy"],
    )
    mlserver_dir = directory / "peer-b-mlserver-bundle"
    (mlserver_dir / MODEL_PATH).parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(reference.pipeline, mlserver_dir / MODEL_PATH)
    return mlflow_dir, mlserver_dir


def mlserver_executable() -> Path:
    return venv_executable(
        "CHURN_MLSERVER_BIN",
        ".venv-mlserver/bin/mlserver",
        "MLServer",
        "bash hack/venv.sh mlserver",
    )


@contextmanager
def mlserver(
    bundle_dir: Path,
    work_dir: Path,
    *,
    progress: Progress,
    model_name: str = MODEL_NAME,
    timeout: float = READY_TIMEOUT_SECONDS,
) -> Iterator[Service]:
    """MLServer + mlserver-sklearn serving the bundle's model.joblib with predict_proba."""
    models_dir = work_dir / "mlserver-models"
    settings_dir = models_dir / model_name
    settings_dir.mkdir(parents=True, exist_ok=True)
    (settings_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": model_name,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {
                    "uri": str((bundle_dir / MODEL_PATH).resolve()),
                    "extra": {"predict_fn": "predict_proba"},
                },
            },
            indent=2,
        )
    )
    port = free_port()
    env = {
        "MLSERVER_HOST": "127.0.0.1",
        "MLSERVER_HTTP_PORT": str(port),
        "MLSERVER_GRPC_PORT": str(free_port()),
        "MLSERVER_METRICS_PORT": str(free_port()),
        # In-process inference: MLServer's worker pool dies with uvloop >= 0.22.
        "MLSERVER_PARALLEL_WORKERS": "0",
        # MLServer writes these into its working directory unless told otherwise.
        "MLSERVER_METRICS_DIR": str(work_dir / "mlserver-metrics"),
        "MLSERVER_ENVIRONMENTS_DIR": str(work_dir / "mlserver-envs"),
        "MLSERVER_DEBUG": "false",
    }
    progress(f"starting MLServer (mlserver-sklearn) on 127.0.0.1:{port}")
    process = start_process(
        "MLServer",
        [str(mlserver_executable()), "start", str(models_dir)],
        log_path=work_dir / "logs/mlserver.log",
        cwd=work_dir,
        env=env,
    )
    with _until_stopped(process, port, f"/v2/models/{model_name}/ready", timeout, progress) as s:
        yield s


@contextmanager
def mlflow_models_serve(model_dir: Path, work_dir: Path, progress: Progress) -> Iterator[Service]:
    """`mlflow models serve` of an MLflow model dir, one uvicorn worker, local environment."""
    port = free_port()
    venv_bin = Path(sys.executable).parent
    progress(f"starting mlflow models serve on 127.0.0.1:{port}")
    process = start_process(
        "mlflow models serve",
        [str(venv_bin / "mlflow"), "models", "serve",
         "--model-uri", str(model_dir), "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        log_path=work_dir / "logs/mlflow-serve.log",
        cwd=work_dir,
        # It execs `uvicorn` through a shell: the venv's bin must come first on PATH.
        env={"PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    # devstack's own wait-then-stop helper, so this peer starts and stops like the others.
    with _until_stopped(process, port, "/ping", READY_TIMEOUT_SECONDS, progress) as service:
        yield service


@contextmanager
def _predictor_alone(
    server: PredictorServer, bundle_dir: Path, work: Path, progress: Progress
) -> Iterator[Running]:
    """The runtime fed the model matrix as the transformer sends it over v2 REST JSON."""
    with server(bundle_dir, work, progress=progress) as predictor:
        yield Running(predictor.url, PredictorWire(MODEL_NAME), {"predictor": predictor.process})


@contextmanager
def _chain(
    server: PredictorServer,
    bundle_dir: Path,
    hop: Hop,
    work: Path,
    progress: Progress,
) -> Iterator[Running]:
    """The project as deployed: the transformer, token check on, in front of a predictor that
    it calls over ``hop``."""
    token = new_token()
    tokens_file = work / "secrets/tokens.json"
    write_tokens(tokens_file, {"bench": token})
    with (
        server(bundle_dir, work, progress=progress) as predictor,
        transformer(
            str(bundle_dir),
            predictor.predictor_host(hop.protocol),
            work,
            tokens_file,
            protocol=hop.protocol,
            env={**UNLIMITED_RATE, **hop.env},
            progress=progress,
        ) as front,
    ):
        processes = {"transformer": front.process, "predictor": predictor.process}
        yield Running(front.url, TransformerWire(MODEL_NAME, token), processes)


@contextmanager
def _peer_mlflow(model_dir: Path, work: Path, progress: Progress) -> Iterator[Running]:
    with mlflow_models_serve(model_dir, work, progress) as server:
        yield Running(server.url, MlflowWire(), {"server": server.process})


@contextmanager
def _peer_mlserver(bundle_dir: Path, work: Path, progress: Progress) -> Iterator[Running]:
    with mlserver(bundle_dir, work, progress=progress) as server:
        yield Running(server.url, PandasV2Wire(MODEL_NAME), {"server": server.process})


def catalogue(bundle_dir: Path, peer_a_model: Path, peer_b_bundle: Path) -> list[SystemSpec]:
    """Every networked system, in run order."""
    return [
        SystemSpec("predictor-sklearnserver-json",
                   "Runtime alone: kserve-sklearnserver, v2 JSON",
                   "predictor", "v2 JSON",
                   partial(_predictor_alone, sklearnserver, bundle_dir)),
        SystemSpec("chain-sklearnserver-grpc",
                   "Chain: transformer -> kserve-sklearnserver, v2 gRPC",
                   "chain", "v2 gRPC, raw FP64 tensors",
                   partial(_chain, sklearnserver, bundle_dir, GRPC_HOP)),
        SystemSpec("chain-sklearnserver-json",
                   "Chain: transformer -> kserve-sklearnserver, v2 JSON",
                   "chain", "v2 JSON", partial(_chain, sklearnserver, bundle_dir, JSON_HOP)),
        SystemSpec("chain-sklearnserver-binary",
                   "Chain: transformer -> kserve-sklearnserver, v2 binary tensors",
                   "chain", "v2 binary tensors",
                   partial(_chain, sklearnserver, bundle_dir, BINARY_HOP)),
        SystemSpec("peer-a-mlflow",
                   "Peer A: mlflow models serve, full Pipeline",
                   "peer", "pandas split JSON", partial(_peer_mlflow, peer_a_model)),
        SystemSpec("peer-b-mlserver-pd",
                   "Peer B: MLServer, full Pipeline, v2 pd",
                   "peer", "v2 JSON (pd)", partial(_peer_mlserver, peer_b_bundle)),
    ]  # fmt: skip


# The runtime alone each chain is held against ("vs predictor alone", the saturation target).
# Every chain is compared with the runtime on v2 JSON: the load generator speaks HTTP/1.1
# only, so the runtime alone cannot be driven over gRPC, and binary costs it more CPU than
# JSON (bench/hop.py).
PREDICTOR_OF = {
    "chain-sklearnserver-grpc": "predictor-sklearnserver-json",
    "chain-sklearnserver-json": "predictor-sklearnserver-json",
    "chain-sklearnserver-binary": "predictor-sklearnserver-json",
}
# Not measured, with the reason; reported in the results so a gap is visible.
SKIPPED: dict[str, str] = {}
