"""Build the report: read, join, measure each arm and bundle version, check drift, compare."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from pydantic import BaseModel

from model import bundle
from model.bundle import BundleMetadata
from model.errors import BundleError
from model.schema import FEATURE_NAMES
from monitoring import io, join
from monitoring.drift import FeatureDrift, measure_drift
from monitoring.metrics import Quality, quality
from monitoring.settings import MonitoringSettings
from monitoring.verdict import ArmOutcomes, Comparison, Rule, Verdict, compare

log = logging.getLogger(__name__)


class GroupReport(Quality):
    """One arm serving one bundle version."""

    arm: str
    bundle_version: str
    first_scored_at: str
    last_scored_at: str
    drift: list[FeatureDrift] | None = None
    drift_skipped: str | None = None


class Inputs(BaseModel):
    predictions: str
    labels: str
    bundles: str | None
    since: str | None
    until: str | None


class Report(BaseModel):
    generated_at: str
    inputs: Inputs
    counts: dict[str, int]
    verdict: Verdict
    comparison: Comparison
    # Per arm, the bundle version it served last in the window: what the verdict compares.
    arms: dict[str, GroupReport]
    # Versions an arm served earlier in the window (before a promote or rollback).
    earlier_versions: list[GroupReport]
    notes: list[str]


@dataclass(frozen=True, slots=True)
class Request:
    predictions: str
    labels: str
    since: datetime | None = None
    until: datetime | None = None
    bundles: str | None = None


@dataclass(slots=True)
class Built:
    report: Report
    joined: pd.DataFrame


def _metadata(root: str, model_name: str, version: str) -> BundleMetadata:
    uri = bundle.bundle_uri(root, model_name, version)
    log.info("reading bundle metadata %s", uri)
    return bundle.read_metadata(uri)


def _group(
    rows: pd.DataFrame,
    *,
    arm: str,
    version: str,
    request: Request,
    settings: MonitoringSettings,
    notes: list[str],
) -> GroupReport:
    metadata, drift_skipped = None, None
    if request.bundles is None:
        drift_skipped = "no --bundles given: no reference to compare with"
    else:
        try:
            metadata = _metadata(request.bundles, settings.model_name, version)
        except BundleError as exc:
            drift_skipped = f"bundle {version} unreadable: {exc}"
            notes.append(drift_skipped)
    features = [name for name in FEATURE_NAMES if name in rows.columns]
    if metadata is not None and not features:
        drift_skipped = "the prediction log has no feature columns: drift skipped"
    measured = quality(
        rows[join.OUTCOME].to_numpy(np.int64),
        rows["churn_probability"].to_numpy(np.float64),
        rows["churn"].to_numpy(bool),
        metadata.threshold if metadata else None,
        settings.calibration_bins,
    )
    drifts = None
    if metadata is not None and features:
        log.info("drift of %s %s over %d rows", arm, version, len(rows))
        drifts = measure_drift(
            rows,
            metadata.reference,
            metadata.training_rows,
            settings.psi_alert,
            settings.drift_alpha,
        )
    return GroupReport(
        **measured.model_dump(),
        arm=arm,
        bundle_version=version,
        first_scored_at=rows["scored_at"].min().isoformat(),
        last_scored_at=rows["scored_at"].max().isoformat(),
        drift=drifts,
        drift_skipped=drift_skipped,
    )


def _outcomes(joined: pd.DataFrame, group: GroupReport | None) -> ArmOutcomes | None:
    if group is None:
        return None
    rows = joined[(joined["arm"] == group.arm) & (joined["bundle_version"] == group.bundle_version)]
    return ArmOutcomes(
        rows[join.OUTCOME].to_numpy(np.int64), rows["churn_probability"].to_numpy(np.float64)
    )


def build(request: Request, settings: MonitoringSettings) -> Built:
    predictions = join.parse_predictions(
        io.read_table(request.predictions, "predictions", join.PREDICTION_COLUMNS),
        request.since,
        request.until,
    )
    labels = join.parse_labels(io.read_table(request.labels, "labels", join.LABEL_COLUMNS))
    joined = join.join(predictions, labels, settings.secret())
    notes = list(joined.notes)
    groups: list[GroupReport] = []
    frame = joined.frame
    for (arm, version), rows in frame.groupby(["arm", "bundle_version"], sort=True):
        log.info("measuring arm %s, bundle %s (%d rows)", arm, version, len(rows))
        groups.append(
            _group(
                rows,
                arm=str(arm),
                version=str(version),
                request=request,
                settings=settings,
                notes=notes,
            )
        )
    latest: dict[str, GroupReport] = {}
    for group in sorted(groups, key=lambda g: g.last_scored_at):
        latest[group.arm] = group
    earlier = [g for g in groups if latest[g.arm] is not g]
    if frame.empty:
        notes.append("no prediction in the window has a label yet")
    log.info("comparing %s with %s", settings.candidate_arm, settings.stable_arm)
    comparison = compare(
        _outcomes(frame, latest.get(settings.stable_arm)),
        _outcomes(frame, latest.get(settings.candidate_arm)),
        Rule(
            min_rows=settings.min_rows,
            min_events=settings.min_events,
            confidence=settings.confidence,
            resamples=settings.bootstrap_resamples,
        ),
        settings.seed,
    )
    report = Report(
        generated_at=datetime.now(UTC).isoformat(),
        inputs=Inputs(
            predictions=request.predictions,
            labels=request.labels,
            bundles=request.bundles,
            since=request.since.isoformat() if request.since else None,
            until=request.until.isoformat() if request.until else None,
        ),
        counts=joined.counts,
        verdict=comparison.verdict,
        comparison=comparison,
        arms=latest,
        earlier_versions=earlier,
        notes=notes,
    )
    return Built(report, frame)
