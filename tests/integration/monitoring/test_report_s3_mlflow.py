"""The monitoring report against real servers: two bundles trained and registered in MLflow, a
prediction log and labels in S3, the report written back to S3 and logged to MLflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from model import storage
from tests.integration.monitoring.prediction_log import score, split_arms, write_parquet
from tests.integration.servers import free_port
from tests.integration.stack import DATA_BUCKET, MODEL, MODEL_BUCKET, Stack, train, upload_data
from training.synthetic import generate, labels

pytestmark = pytest.mark.integration

SECRET = "integration-key"


def monitoring(stack: Stack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitoring", "report", *args],
        env={**os.environ, **stack.env, "CHURN_MONITORING_CUSTOMER_KEY": SECRET, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def trained(stack: Stack, tmp_path: Path, name: str, seed: int, signal: str) -> dict[str, str]:
    data = upload_data(stack, tmp_path, name, seed, options=("--signal", signal))
    result = train(stack, data)
    assert result.returncode == 0, result.stderr
    summary: dict[str, str] = json.loads(result.stdout)
    return summary


def test_report_reads_and_writes_s3_and_logs_to_mlflow(stack: Stack, tmp_path: Path) -> None:
    stable = trained(stack, tmp_path, "stable.csv", seed=21, signal="1")
    # Trained where contract and fiber seemed not to matter: genuinely worse on real customers.
    candidate = trained(stack, tmp_path, "candidate.csv", seed=22, signal="0")

    served = generate(3000, seed=23, drift=0.5)
    to_candidate = split_arms(served, candidate_share=0.5, seed=24)
    for part, (arm, summary, rows) in enumerate(
        [("stable", stable, served[~to_candidate]), ("candidate", candidate, served[to_candidate])]
    ):
        log = score(summary["bundle_uri"], rows, arm=arm, secret=SECRET.encode(),
                    start="2026-11-02")  # fmt: skip
        write_parquet(log, f"s3://{DATA_BUCKET}/predictions/date=2026-11-02/part-{part}.parquet")
    outcomes = labels(served, "2026-11-30").to_csv(index=False).encode()
    storage.write_bytes(f"s3://{DATA_BUCKET}/labels/november.csv", outcomes)

    output = f"s3://{DATA_BUCKET}/reports/2026-11"
    result = monitoring(
        stack,
        "--predictions", f"s3://{DATA_BUCKET}/predictions",
        "--labels", f"s3://{DATA_BUCKET}/labels",
        "--bundles", f"s3://{MODEL_BUCKET}",
        "--since", "2026-11-01", "--until", "2026-12-01",
        "--output", output,
        "--mlflow",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "reading predictions s3://" in result.stderr, "progress goes to stderr"
    summary = json.loads(result.stdout)
    assert summary["verdict"] == "stable_better", summary

    report = json.loads(storage.read_bytes(f"{output}/report.json"))
    assert report["counts"]["joined"] == 3000
    arms = report["arms"]
    assert arms["stable"]["bundle_version"] == stable["version"]
    assert arms["candidate"]["bundle_version"] == candidate["version"]
    assert arms["stable"]["rows"] + arms["candidate"]["rows"] == 3000
    contract = next(d for d in arms["stable"]["drift"] if d["feature"] == "Contract")
    assert contract["drifted"], "generate(drift=0.5) shifts the contract mix"
    assert b"data:image/png;base64," in storage.read_bytes(f"{output}/report.html")

    client = MlflowClient(tracking_uri=stack.mlflow.url)
    for arm, trained_summary in (("stable", stable), ("candidate", candidate)):
        version = client.get_model_version(MODEL, trained_summary["model_version"])
        assert float(version.tags["realized_roc_auc"]) == pytest.approx(arms[arm]["roc_auc"])
        assert summary["mlflow"][arm]["model_version"] == trained_summary["model_version"]
        run = client.get_run(version.tags["monitoring_run_id"])
        assert run.data.tags["model_version"] == trained_summary["model_version"]
        assert run.data.tags["verdict"] == "stable_better"
        assert run.data.metrics["realized_brier"] == pytest.approx(arms[arm]["brier"])


def test_mlflow_down_fails_clearly_after_writing_the_report(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text(
        "scored_at,request_id,arm,bundle_version,customerID,churn_probability,churn\n"
        "2026-11-02T10:00:00Z,r1,stable,v1,0001-AAAAA,0.3,false\n"
    )
    (tmp_path / "labels.csv").write_text("customerID,Churn\n0001-AAAAA,No\n")
    result = monitoring(
        stack,
        "--predictions", str(tmp_path / "log.csv"),
        "--labels", str(tmp_path / "labels.csv"),
        "--output", str(tmp_path / "out"),
        "--mlflow",
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
    )  # fmt: skip
    assert result.returncode == 1
    assert "MLflow at http://127.0.0.1:" in result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["verdict"] == "insufficient_data"
    assert report["arms"]["stable"]["roc_auc"] is None
