"""Parity: scikit-learn preprocessing at training time and the numpy spec at serving time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.schema import FEATURES
from training.features import build_preprocessor, export_spec
from training.settings import TrainingSettings
from training.synthetic import generate
from training.validation import read_csv, validate


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    raw = read_csv(generate(3000, seed=21, dirty_fraction=0.02).to_csv(index=False).encode())
    frame, _ = validate(raw, TrainingSettings())
    return frame


def serving_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """What the transformer hands the spec: float numerics (NaN = missing) and strings."""
    return {
        f.name: frame[f.name].to_numpy(dtype=np.float64 if f.kind == "numeric" else str)
        for f in FEATURES
    }


def test_spec_reproduces_the_fitted_column_transformer_exactly(clean: pd.DataFrame) -> None:
    train, holdout = clean.iloc[:2000], clean.iloc[2000:]
    preprocessor = build_preprocessor().fit(train)
    spec = export_spec(preprocessor, unknown="reject")
    assert holdout["TotalCharges"].isna().any(), "the parity rows must exercise imputation"
    expected = preprocessor.transform(holdout)
    actual = spec.transform(serving_columns(holdout)).matrix
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


def test_spec_survives_json_and_keeps_parity(clean: pd.DataFrame) -> None:
    preprocessor = build_preprocessor().fit(clean)
    spec = export_spec(preprocessor, unknown="zero")
    reloaded = type(spec).from_json(spec.to_json())
    np.testing.assert_array_equal(
        reloaded.transform(serving_columns(clean)).matrix, preprocessor.transform(clean)
    )
    assert reloaded.categorical[0].unknown == "zero"
