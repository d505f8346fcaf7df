"""One training run: validate, fit, write and verify the bundle, then register it.

Order matters for safety. Nothing is written until the data passes validation; nothing is
registered until the bundle is committed and read back; the serving alias never moves here.
"""

from __future__ import annotations

import io
import logging
import platform
import secrets
import time
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from typing import Any

import joblib
import pandas as pd

from model import bundle, storage
from model.bundle import BundleMetadata
from training import estimator, registry
from training.features import export_spec
from training.settings import TrainingSettings
from training.validation import DataError, ValidationReport, read_csv, validate

log = logging.getLogger(__name__)

LIBRARIES = ("scikit-learn", "numpy", "scipy", "pandas", "joblib", "mlflow")


def load_and_validate(settings: TrainingSettings) -> tuple[pd.DataFrame, ValidationReport, str]:
    """Clean frame, report and the sha256 fingerprint of the raw input."""
    if not settings.data:
        raise DataError("no training data given: pass --data FILE (local path or s3:// URI)")
    log.info("reading %s", settings.data)
    try:
        raw_bytes = storage.read_bytes(settings.data)
    except FileNotFoundError as exc:
        raise DataError(f"training data not found: {settings.data}") from exc
    raw = read_csv(raw_bytes)
    log.info("validating %d rows x %d columns", len(raw), len(raw.columns))
    clean, report = validate(raw, settings)
    return clean, report, bundle.sha256(raw_bytes)


def new_version() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def train(settings: TrainingSettings) -> dict[str, Any]:
    started = time.perf_counter()
    clean, report, fingerprint = load_and_validate(settings)
    log.info("%s", report.summary())
    if not report.passed:
        raise DataError("training data failed validation: " + " | ".join(report.failures))

    result = estimator.fit(clean, settings)
    log.info(
        "test ROC AUC %.4f, PR AUC %.4f, F1 %.4f at threshold %.4f",
        result.metrics["test_roc_auc"],
        result.metrics["test_pr_auc"],
        result.metrics["test_f1"],
        result.threshold,
    )
    spec = export_spec(result.pipeline.named_steps["preprocess"], settings.unknown_category_policy)
    classifier = result.pipeline.named_steps["classifier"]

    version = new_version()
    uri = bundle.bundle_uri(settings.output, settings.model_name, version)
    model_bytes = io.BytesIO()
    joblib.dump(classifier, model_bytes)
    report_json = report.model_dump_json(indent=2).encode()
    files = {
        bundle.MODEL_PATH: model_bytes.getvalue(),
        bundle.SPEC_FILE: spec.to_json().encode(),
        bundle.REPORT_FILE: report_json,
    }
    metadata = BundleMetadata(
        model_name=settings.model_name,
        version=version,
        created_at=datetime.now(UTC).isoformat(),
        threshold=result.threshold,
        threshold_rule=result.threshold_rule,
        metrics=result.metrics,
        library_versions={
            "python": platform.python_version(),
            **{lib: package_version(lib) for lib in LIBRARIES},
        },
        data_fingerprint=fingerprint,
        training_rows=len(clean),
        reference={
            **estimator.reference_distributions(clean, result),
            "calibration": result.calibration,
        },
        files={},
    )
    log.info("writing bundle %s", uri)
    bundle.write_bundle(uri, files, metadata)
    committed = bundle.verify_bundle(uri)
    log.info("bundle verified (%d files read back)", len(committed.files) + 1)

    registered = registry.log_and_register(
        settings,
        estimator=classifier,
        requirements=[
            f"{lib}=={metadata.library_versions[lib]}" for lib in ("scikit-learn", "numpy", "scipy")
        ],
        params={
            "C": result.best_c,
            "cv_folds": settings.cv_folds,
            "seed": settings.seed,
            "threshold_rule": settings.threshold_rule,
            "unknown_category_policy": settings.unknown_category_policy,
            "data": settings.data,
            "data_fingerprint": fingerprint,
            "training_rows": len(clean),
        },
        metrics=result.metrics,
        artifacts={
            bundle.REPORT_FILE: report_json,
            bundle.SPEC_FILE: files[bundle.SPEC_FILE],
            bundle.METADATA_FILE: committed.model_dump_json(indent=2).encode(),
        },
        bundle_uri=uri,
        storage_uri=bundle.storage_uri(uri),
        bundle_version=version,
    )
    return {
        "model_name": settings.model_name,
        "version": version,
        "bundle_uri": uri,
        "storage_uri": bundle.storage_uri(uri),
        "mlflow_run_id": registered.run_id,
        "model_version": registered.model_version,
        "alias": registry.CANDIDATE,
        "threshold": result.threshold,
        "best_c": result.best_c,
        "validation": {
            "input_rows": report.input_rows,
            "clean_rows": report.clean_rows,
            "dropped": sum(report.dropped.values()),
            "repaired": sum(report.repaired.values()),
        },
        **result.metrics,
        "seconds": round(time.perf_counter() - started, 2),
    }
