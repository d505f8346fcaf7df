"""`python -m monitoring report` on local files: outputs, drift, key handling and clear failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model import bundle
from model.bundle import BundleMetadata
from model.keys import customer_keys
from model.schema import CATEGORICAL_FEATURES, CUSTOMER_ID, FEATURE_NAMES, NUMERIC_FEATURES
from monitoring.__main__ import main
from training.synthetic import generate, labels

SECRET = "report-test-key"
LEVELS = np.linspace(0, 1, 11)


def reference(customers: pd.DataFrame) -> dict[str, object]:
    """What training stores in metadata.json, computed here by plain pandas."""
    numeric = {
        f.name: np.nanquantile(pd.to_numeric(customers[f.name], errors="coerce"), LEVELS).tolist()
        for f in NUMERIC_FEATURES
    }
    categorical = {
        f.name: customers[f.name].value_counts(normalize=True).to_dict()
        for f in CATEGORICAL_FEATURES
    }
    return {
        "numeric_deciles": numeric,
        "category_frequencies": categorical,
        "score_histogram": {"edges": np.linspace(0, 1, 21).tolist(), "counts": [10] * 20},
    }


def write_bundle(root: Path, version: str, customers: pd.DataFrame) -> None:
    metadata = BundleMetadata(
        model_name="churn", version=version, created_at=datetime.now(UTC).isoformat(),
        threshold=0.4, threshold_rule="max_f1", metrics={}, library_versions={},
        data_fingerprint="", training_rows=len(customers), reference=reference(customers), files={},
    )  # fmt: skip
    bundle.write_bundle(str(root / "churn" / version), {}, metadata)


def scores(customers: pd.DataFrame, *, knows_contract: bool) -> np.ndarray:
    logit = -0.5 - 0.04 * customers["tenure"].astype(float)
    if knows_contract:
        logit += np.where(customers["Contract"] == "Month-to-month", 1.3, -0.8)
        logit += np.where(customers["InternetService"] == "Fiber optic", 0.8, 0.0)
    return np.asarray(1 / (1 + np.exp(-logit)))


def prediction_log(customers: pd.DataFrame, *, keyed: bool, features: bool) -> pd.DataFrame:
    candidate = np.arange(len(customers)) % 2 == 1
    probability = np.where(
        candidate, scores(customers, knows_contract=True), scores(customers, knows_contract=False)
    )
    ids = customers[CUSTOMER_ID]
    return pd.DataFrame(
        {
            "scored_at": pd.date_range("2026-11-01", periods=len(customers), freq="min", tz="UTC"),
            "request_id": [f"r{i}" for i in range(len(customers))],
            "arm": np.where(candidate, "candidate", "stable"),
            "bundle_version": np.where(candidate, "v2", "v1"),
            **(
                {"customer_key": customer_keys(ids, SECRET.encode())}
                if keyed
                else {CUSTOMER_ID: ids}
            ),
            "churn_probability": probability,
            "churn": probability >= 0.4,
            **({name: customers[name] for name in FEATURE_NAMES} if features else {}),
        }
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bundles v1 and v2 trained on normal customers; served customers drifted; their labels."""
    root = tmp_path_factory.mktemp("inputs")
    trained = generate(4000, seed=1)
    write_bundle(root / "bundles", "v1", trained)
    write_bundle(root / "bundles", "v2", trained)
    served = generate(4000, seed=2, drift=1.0)
    (root / "log").mkdir()
    keyed = prediction_log(served, keyed=True, features=True)
    keyed.iloc[:2000].to_parquet(root / "log" / "part-0.parquet")
    keyed.iloc[2000:].to_parquet(root / "log" / "part-1.parquet")
    prediction_log(served, keyed=False, features=False).to_csv(root / "raw.csv", index=False)
    labels(served, "2026-12-01").to_csv(root / "labels.csv", index=False)
    return root


@pytest.fixture(autouse=True)
def fast_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_MONITORING_MIN_ROWS", "300")
    monkeypatch.setenv("CHURN_MONITORING_BOOTSTRAP_RESAMPLES", "500")


def report(inputs: Path, output: Path, *args: str) -> int:
    return main(["report", "--labels", str(inputs / "labels.csv"), "--output", str(output), *args])


def test_full_report_with_keys_bundles_and_drift(
    inputs: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "key").write_text(SECRET + "\n")
    monkeypatch.setenv("CHURN_MONITORING_CUSTOMER_KEY_FILE", str(tmp_path / "key"))
    code = report(inputs, tmp_path / "out", "--predictions", str(inputs / "log"),
                  "--bundles", str(inputs / "bundles"))  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["verdict"] == "candidate_better"
    assert summary["joined"] == 4000

    result = json.loads((tmp_path / "out" / "report.json").read_text())
    assert result["verdict"] == "candidate_better"
    assert result["comparison"]["roc_auc_difference"]["low"] > 0
    stable, candidate = result["arms"]["stable"], result["arms"]["candidate"]
    assert (stable["bundle_version"], candidate["bundle_version"]) == ("v1", "v2")
    assert stable["rows"] == candidate["rows"] == 2000
    assert stable["threshold"] == 0.4
    assert 0.5 < stable["roc_auc"] < candidate["roc_auc"]
    assert sum(candidate["reliability"]["rows"]) == 2000
    drifted = {d["feature"] for d in candidate["drift"] if d["drifted"]}
    # generate(drift=1.0): more month-to-month contracts and charges up 20 %.
    assert {"Contract", "MonthlyCharges"} <= drifted
    assert not drifted & {"gender", "Partner", "PhoneService"}

    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3
    assert "candidate_better" in html
    assert "<script" not in html  # self-contained and static


def test_raw_ids_without_features_skip_drift(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = report(inputs, tmp_path, "--predictions", str(inputs / "raw.csv"),
                  "--bundles", str(inputs / "bundles"))  # fmt: skip
    assert code == 0
    result = json.loads((tmp_path / "report.json").read_text())
    assert result["arms"]["stable"]["drift"] is None
    assert "no feature columns" in result["arms"]["stable"]["drift_skipped"]
    assert any("raw customerIDs" in note for note in result["notes"])
    assert "no feature columns" in (tmp_path / "report.html").read_text()


def test_a_window_without_labels_is_insufficient_data(inputs: Path, tmp_path: Path) -> None:
    code = report(inputs, tmp_path, "--predictions", str(inputs / "raw.csv"),
                  "--since", "2027-01-01")  # fmt: skip
    assert code == 0
    result = json.loads((tmp_path / "report.json").read_text())
    assert result["verdict"] == "insufficient_data"
    assert result["comparison"]["reason"].startswith("no joined rows for the stable arm")
    assert result["arms"] == {}


def test_keyed_predictions_without_a_key_fail_clearly(
    inputs: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert report(inputs, tmp_path, "--predictions", str(inputs / "log")) == 2
    assert "CHURN_MONITORING_CUSTOMER_KEY_FILE" in caplog.text
    assert not (tmp_path / "report.json").exists()


def test_a_missing_column_names_column_and_file(
    inputs: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pd.read_csv(inputs / "raw.csv").drop(columns="arm").to_csv(tmp_path / "bad.csv", index=False)
    assert report(inputs, tmp_path, "--predictions", str(tmp_path / "bad.csv")) == 2
    assert f"predictions: column 'arm' is missing in {tmp_path / 'bad.csv'}" in caplog.text
