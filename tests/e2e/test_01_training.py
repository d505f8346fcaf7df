"""Step 1: the training Job runs in cluster; the bundle lands in MinIO, a version in MLflow."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from model.bundle import METADATA_FILE, MODEL_PATH, SPEC_FILE, verify_bundle
from model.storage import s3_client, split_s3
from tests.e2e.journey import TrainedModel


def test_training_job_writes_a_verified_bundle_to_minio(first_model: TrainedModel) -> None:
    bucket, prefix = split_s3(first_model.bundle_uri)
    listing = s3_client().list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")
    keys = {item["Key"].removeprefix(f"{prefix}/") for item in listing.get("Contents", [])}

    assert bucket == "models"
    assert {METADATA_FILE, MODEL_PATH, SPEC_FILE} <= keys
    assert first_model.storage_uri == f"{first_model.bundle_uri}/model"
    metadata = verify_bundle(first_model.bundle_uri)  # every file against its recorded sha256
    assert metadata.version == first_model.version
    assert first_model.summary["test_roc_auc"] > 0.7


def test_training_job_registers_the_bundle_in_mlflow(
    first_model: TrainedModel, mlflow_url: str
) -> None:
    client = MlflowClient(tracking_uri=mlflow_url)
    version = client.get_model_version("churn", first_model.registered_version)

    assert version.tags["bundle_uri"] == first_model.bundle_uri
    assert version.tags["storage_uri"] == first_model.storage_uri
    assert client.get_model_version_by_alias("churn", "candidate").version == version.version
