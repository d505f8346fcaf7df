"""Train, register, promote and roll back against a real MLflow server and a real S3 server.

Failure runs (object store down, MLflow down, bad data) must leave the registry, its
aliases and the served bundles exactly as they were.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from model import bundle
from tests.integration.servers import free_port
from tests.integration.stack import MODEL, MODEL_BUCKET, Stack, cli, train, upload_data

pytestmark = pytest.mark.integration


def registry_state(stack: Stack) -> tuple[list[str], dict[str, str]]:
    client = MlflowClient(tracking_uri=stack.mlflow.url)
    versions = sorted(v.version for v in client.search_model_versions(f"name='{MODEL}'"))
    try:
        aliases = dict(client.get_registered_model(MODEL).aliases)
    except Exception:
        aliases = {}
    return versions, aliases


def bundle_keys(stack: Stack) -> list[str]:
    listing = stack.s3_client().list_objects_v2(Bucket=MODEL_BUCKET)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_train_promote_and_roll_back(stack: Stack, tmp_path: Path) -> None:
    first = train(stack, upload_data(stack, tmp_path, "first.csv", seed=1, dirty=0.02))
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert 0.75 < summary["test_roc_auc"] < 0.95
    assert "validating" in first.stderr, "long steps report progress on stderr"

    # The model directory KServe loads holds exactly one model file.
    prefix = summary["storage_uri"].removeprefix(f"s3://{MODEL_BUCKET}/")
    assert [k for k in bundle_keys(stack) if k.startswith(prefix)] == [f"{prefix}/model.joblib"]
    assert bundle.verify_bundle(summary["bundle_uri"]).version == summary["version"]
    # The serving guard (one model file, the bundle's own) passes over S3 listings too.
    assert bundle.load_serving_bundle(summary["bundle_uri"]).version == summary["version"]

    client = MlflowClient(tracking_uri=stack.mlflow.url)
    registered = client.get_model_version(MODEL, summary["model_version"])
    assert registered.tags["storage_uri"] == summary["storage_uri"]
    assert registered.tags["bundle_uri"] == summary["bundle_uri"]
    run = client.get_run(summary["mlflow_run_id"])
    assert run.data.metrics["test_roc_auc"] == pytest.approx(summary["test_roc_auc"])
    assert "validation_report.json" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert registry_state(stack)[1] == {"candidate": summary["model_version"]}

    promoted = cli(stack, "promote")
    assert promoted.returncode == 0, promoted.stderr
    assert json.loads(promoted.stdout)["storage_uri"] == summary["storage_uri"]

    second = train(stack, upload_data(stack, tmp_path, "second.csv", seed=2))
    assert second.returncode == 0, second.stderr
    second_version = json.loads(second.stdout)["model_version"]
    _, aliases = registry_state(stack)
    assert aliases == {"champion": summary["model_version"], "candidate": second_version}

    assert cli(stack, "promote").returncode == 0
    assert registry_state(stack)[1]["champion"] == second_version

    rolled = cli(stack, "rollback")
    assert rolled.returncode == 0, rolled.stderr
    assert json.loads(rolled.stdout)["rolled_back_from"] == second_version
    assert registry_state(stack)[1]["champion"] == summary["model_version"]

    nothing_left = cli(stack, "rollback")
    assert nothing_left.returncode == 1
    assert "replaced no earlier version" in nothing_left.stderr


def test_failed_runs_change_nothing(stack: Stack, tmp_path: Path) -> None:
    data = upload_data(stack, tmp_path, "ok.csv", seed=3)
    assert train(stack, data).returncode == 0
    before_registry, before_keys = registry_state(stack), bundle_keys(stack)

    bad = upload_data(stack, tmp_path, "bad.csv", seed=4, dirty=0.6)
    failed = train(stack, bad)
    assert failed.returncode == 2
    assert "failed validation" in failed.stderr
    assert "row" in failed.stderr

    store_down = train(stack, data, AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")
    assert store_down.returncode != 0

    mlflow_down = train(stack, data, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}",
                        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")  # fmt: skip
    assert mlflow_down.returncode != 0

    assert registry_state(stack) == before_registry
    # The MLflow-down run committed a bundle nobody points at; served bundles are untouched.
    after_keys = bundle_keys(stack)
    assert set(before_keys) <= set(after_keys)
    new_metadata = [k for k in set(after_keys) - set(before_keys) if k.endswith("metadata.json")]
    assert len(new_metadata) <= 1
