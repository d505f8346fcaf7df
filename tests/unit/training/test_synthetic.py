"""Synthetic customers for monitoring scenarios: labels, drift, and a weaker churn signal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from model.schema import CSV_COLUMNS, CUSTOMER_ID, TARGET
from training.cli import main
from training.synthetic import generate


def _design(customers: pd.DataFrame) -> np.ndarray:
    return np.column_stack(
        [
            customers["tenure"],
            customers["Contract"] == "Month-to-month",
            customers["Contract"] == "Two year",
            customers["InternetService"] == "Fiber optic",
            customers["PaymentMethod"] == "Electronic check",
        ]
    ).astype(float)


def test_defaults_are_unchanged_by_the_new_options() -> None:
    pd.testing.assert_frame_equal(generate(300, 5), generate(300, 5, signal=1.0, drift=0.0))


def test_drift_shifts_contracts_and_charges() -> None:
    normal, drifted = generate(20_000, 3), generate(20_000, 3, drift=1.0)
    month_to_month = {
        name: (frame["Contract"] == "Month-to-month").mean()
        for name, frame in (("normal", normal), ("drifted", drifted))
    }
    assert month_to_month["drifted"] > month_to_month["normal"] + 0.15
    ratio = drifted["MonthlyCharges"].mean() / normal["MonthlyCharges"].mean()
    assert 1.15 < ratio < 1.25
    assert list(drifted.columns) == list(CSV_COLUMNS)


def test_a_model_trained_without_the_signal_is_genuinely_worse() -> None:
    world = generate(20_000, 9)
    y_world = world[TARGET] == "Yes"
    aucs = {}
    for signal in (1.0, 0.0):
        training = generate(20_000, 10, signal=signal)
        model = LogisticRegression(max_iter=1000).fit(_design(training), training[TARGET] == "Yes")
        aucs[signal] = roc_auc_score(y_world, model.predict_proba(_design(world))[:, 1])
    assert aucs[1.0] > aucs[0.0] + 0.03


def test_generate_writes_the_labels_of_the_customers(tmp_path: Path) -> None:
    customers, outcomes = tmp_path / "customers.csv", tmp_path / "labels.csv"
    code = main(["-q", "generate", "--rows", "50", "--seed", "4", "--drift", "0.5",
                 "--output", str(customers), "--labels-output", str(outcomes),
                 "--label-date", "2026-12-01"])  # fmt: skip
    assert code == 0
    written = pd.read_csv(customers, dtype=str, keep_default_na=False)
    labels = pd.read_csv(outcomes, dtype=str)
    assert list(labels.columns) == [CUSTOMER_ID, TARGET, "label_date"]
    assert labels[CUSTOMER_ID].tolist() == written[CUSTOMER_ID].tolist()
    assert labels[TARGET].tolist() == written[TARGET].tolist()
    assert set(labels["label_date"]) == {"2026-12-01"}
    pd.testing.assert_frame_equal(
        written, generate(50, 4, drift=0.5).astype(str), check_dtype=False
    )


def test_generate_without_labels_still_writes_only_customers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-q", "generate", "--rows", "20", "--output", str(tmp_path / "c.csv")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv"]
    assert json.loads(capsys.readouterr().out)["rows"] == 20
