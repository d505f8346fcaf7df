"""--mlflow: realized metrics against each arm's registered model version.

Training registers every bundle as a version of the model tagged `bundle_version`. For each arm
the report opens a run in the monitoring experiment, tagged with the model version, logs the
headline metrics there, and tags the model version itself with the latest realized ROC AUC.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from model.bundle import TAG_BUNDLE_VERSION
from monitoring.report import GroupReport, Report
from monitoring.settings import MonitoringSettings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

HEADLINE = (
    "rows", "positives", "roc_auc", "pr_auc", "brier", "log_loss",
    "expected_calibration_error", "precision", "recall",
)  # fmt: skip


class TrackingError(RuntimeError):
    pass


def _tracking_uri(settings: MonitoringSettings) -> str:
    uri = settings.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise TrackingError(
            "--mlflow needs a tracking server: set CHURN_MONITORING_MLFLOW_TRACKING_URI "
            "or MLFLOW_TRACKING_URI"
        )
    return uri


def _experiment(client: MlflowClient, name: str) -> str:
    existing = client.get_experiment_by_name(name)
    return str(existing.experiment_id if existing else client.create_experiment(name))


def _log_group(
    client: MlflowClient, experiment: str, report: Report, group: GroupReport, model: str
) -> dict[str, str] | None:
    versions = client.search_model_versions(
        f"name='{model}' and tags.{TAG_BUNDLE_VERSION}='{group.bundle_version}'"
    )
    if not versions:
        log.warning(
            "no version of %s is tagged %s=%s", model, TAG_BUNDLE_VERSION, group.bundle_version
        )
        return None
    version = str(versions[0].version)
    run = client.create_run(
        experiment,
        run_name=f"{group.arm}-{group.bundle_version}",
        tags={
            "model_name": model,
            "model_version": version,
            TAG_BUNDLE_VERSION: group.bundle_version,
            "arm": group.arm,
            "verdict": report.verdict.value,
        },
    )
    from mlflow.entities import Metric  # noqa: PLC0415 (see log_report)

    now = int(time.time() * 1000)
    values = {name: getattr(group, name) for name in HEADLINE}
    metrics = [
        Metric(f"realized_{name}", float(value), now, 0)
        for name, value in values.items()
        if value is not None
    ]
    client.log_batch(run.info.run_id, metrics=metrics)
    client.set_terminated(run.info.run_id)
    if group.roc_auc is not None:
        client.set_model_version_tag(model, version, "realized_roc_auc", f"{group.roc_auc:.6f}")
    client.set_model_version_tag(model, version, "monitoring_run_id", run.info.run_id)
    log.info("logged %s to MLflow run %s (model version %s)", group.arm, run.info.run_id, version)
    return {"model_version": version, "run_id": run.info.run_id}


def log_report(report: Report, settings: MonitoringSettings) -> dict[str, dict[str, str]]:
    """Arm -> the model version and monitoring run its metrics went to."""
    # Imported here: mlflow takes seconds to import, which a report without --mlflow skips.
    from mlflow.exceptions import MlflowException  # noqa: PLC0415
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    uri = _tracking_uri(settings)
    client = MlflowClient(tracking_uri=uri)
    logged = {}
    try:
        experiment = _experiment(client, settings.mlflow_experiment)
        for arm, group in report.arms.items():
            result = _log_group(client, experiment, report, group, settings.model_name)
            if result is not None:
                logged[arm] = result
    except MlflowException as exc:
        raise TrackingError(f"MLflow at {uri}: {exc}") from exc
    return logged
