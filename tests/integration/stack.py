"""A real MLflow server and S3 server with the training CLI pointed at them.

Shared by the training flow and the monitoring report tests; `stack` in conftest.py starts one
per test module.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3

from tests.integration.servers import Server, mlflow_server, s3_server

MODEL = "churn"
DATA_BUCKET, MODEL_BUCKET = "data", "models"
FAST_TRAINING = {"CHURN_TRAINING_CV_FOLDS": "3", "CHURN_TRAINING_C_GRID": "[0.1, 1.0]"}


@dataclass(frozen=True)
class Stack:
    s3: Server
    mlflow: Server
    env: dict[str, str]

    def s3_client(self):  # type: ignore[no-untyped-def]
        return boto3.client("s3", endpoint_url=self.s3.url, region_name="us-east-1")


@contextmanager
def running_stack(workdir: Path) -> Iterator[Stack]:
    with s3_server(workdir) as s3, mlflow_server(workdir) as mlflow:
        env = {**FAST_TRAINING, "AWS_ENDPOINT_URL": s3.url, "MLFLOW_TRACKING_URI": mlflow.url}
        previous_endpoint = os.environ["AWS_ENDPOINT_URL"]
        os.environ["AWS_ENDPOINT_URL"] = s3.url  # for bundle reads in this process
        result = Stack(s3, mlflow, env)
        client = result.s3_client()
        client.create_bucket(Bucket=DATA_BUCKET)
        client.create_bucket(Bucket=MODEL_BUCKET)
        try:
            yield result
        finally:
            os.environ["AWS_ENDPOINT_URL"] = previous_endpoint


def cli(stack: Stack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        env={**os.environ, **stack.env, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def upload_data(
    stack: Stack,
    tmp_path: Path,
    name: str,
    seed: int,
    *,
    dirty: float = 0.0,
    options: Sequence[str] = (),
) -> str:
    """Generate customers (extra `generate` options allowed) and upload them to the data bucket."""
    local = tmp_path / name
    generated = cli(stack, "generate", "--rows", "1500", "--seed", str(seed),
                    "--dirty-fraction", str(dirty), "--output", str(local), *options)  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    stack.s3_client().upload_file(str(local), DATA_BUCKET, name)
    return f"s3://{DATA_BUCKET}/{name}"


def train(stack: Stack, data: str, **env: str) -> subprocess.CompletedProcess[str]:
    return cli(stack, "train", "--data", data, "--output", f"s3://{MODEL_BUCKET}", **env)
