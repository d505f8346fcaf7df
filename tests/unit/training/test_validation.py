"""Training-time validation of real-export quirks: repaired, dropped or failed, always counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.schema import MAX_NUMBER_TEXT_CHARS, TARGET
from training.settings import TrainingSettings
from training.synthetic import generate
from training.validation import DataError, read_csv, validate


def as_export(frame: pd.DataFrame) -> pd.DataFrame:
    """What read_csv gives for a CSV of this frame: every cell as text."""
    return read_csv(frame.to_csv(index=False).encode())


@pytest.fixture
def export() -> pd.DataFrame:
    return as_export(generate(400, seed=3))


def settings(**overrides: object) -> TrainingSettings:
    return TrainingSettings(**overrides)  # type: ignore[arg-type]


def test_clean_export_passes_with_canonical_values(export: pd.DataFrame) -> None:
    clean, report = validate(export, settings())
    assert report.passed
    assert report.clean_rows == len(clean) == 400
    assert set(clean[TARGET].unique()) <= {0, 1}
    assert clean["tenure"].dtype == float


def test_blank_total_charges_are_kept_for_the_declared_imputation(export: pd.DataFrame) -> None:
    export.loc[[0, 1], "TotalCharges"] = ["", " "]
    clean, report = validate(export, settings())
    assert clean["TotalCharges"].isna().sum() >= 2
    assert report.imputed["TotalCharges"] == clean["TotalCharges"].isna().sum()
    assert report.clean_rows == 400


def test_case_and_whitespace_are_repaired_and_counted(export: pd.DataFrame) -> None:
    export.loc[[3, 4], "Contract"] = ["  TWO year", "one YEAR "]
    clean, report = validate(export, settings())
    assert list(clean.loc[[3, 4], "Contract"]) == ["Two year", "One year"]
    assert report.repaired["Contract: spelling normalized (case/whitespace)"] == 2


def test_unknown_categories_and_bad_numbers_drop_rows_with_reasons(export: pd.DataFrame) -> None:
    export.loc[5, "PaymentMethod"] = "Crypto"
    export.loc[6, "tenure"] = "-3"
    export.loc[7, "MonthlyCharges"] = "n/a"
    export.loc[8, TARGET] = "maybe"
    _, report = validate(export, settings())
    assert report.clean_rows == 396
    assert report.unknown_categories == {"PaymentMethod": {"Crypto": 1}}
    assert report.dropped == {
        "PaymentMethod: unknown category": 1,
        "tenure: outside the valid range [0, 120]": 1,
        "MonthlyCharges: is not a number": 1,
        "Churn: label must be one of No/Yes": 1,
    }
    rows = {(e.field, e.row) for e in report.examples}
    # 1-based CSV data rows.
    assert rows == {("PaymentMethod", 6), ("tenure", 7), ("MonthlyCharges", 8), (TARGET, 9)}


def test_numbers_follow_the_serving_grammar_and_length_limit(export: pd.DataFrame) -> None:
    """The same text is a number, missing or refused in training as in serving (model/)."""
    blank_elsewhere = (export.loc[7:, "TotalCharges"].str.strip() == "").sum()
    export.loc[0:6, "TotalCharges"] = ["NaN", "1_0", "\uff11\uff12", "inf", " 1e3 ", "", "0" * 33]
    clean, report = validate(export, settings())
    assert report.dropped == {
        "TotalCharges: is not a number": 4,
        f"TotalCharges: longer than {MAX_NUMBER_TEXT_CHARS} characters": 1,
    }
    assert {(e.field, e.row, e.reason) for e in report.examples} == {
        ("TotalCharges", 1, "is not a number"),
        ("TotalCharges", 2, "is not a number"),
        ("TotalCharges", 3, "is not a number"),
        ("TotalCharges", 4, "is not a number"),
        ("TotalCharges", 7, f"longer than {MAX_NUMBER_TEXT_CHARS} characters"),
    }
    # "NaN" is not a blank: of the seven, only CSV row 6 is missing (kept for imputation). The
    # clean frame starts with CSV rows 5 and 6: rows 1-4 and 7 were dropped.
    assert report.missing_values["TotalCharges"] == blank_elsewhere + 1
    assert clean.loc[0, "TotalCharges"] == 1000.0
    assert np.isnan(clean.loc[1, "TotalCharges"])


def test_exact_duplicates_are_removed_and_conflicting_ids_dropped(export: pd.DataFrame) -> None:
    copy = export.iloc[[10]]
    conflict = export.iloc[[11]].copy()
    conflict["tenure"] = "70"
    doubled = pd.concat([export, copy, conflict], ignore_index=True)
    _, report = validate(doubled, settings())
    assert report.repaired["duplicate rows removed (exact copies)"] == 1
    assert report.dropped["customerID: duplicate customerID with conflicting values"] == 2
    assert report.duplicate_ids == 2
    assert report.clean_rows == 399


def test_missing_columns_fail_naming_them(export: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="missing required column\\(s\\): tenure, Contract"):
        validate(export.drop(columns=["tenure", "Contract"]), settings())


def test_too_many_bad_rows_fail_with_counts_and_examples(export: pd.DataFrame) -> None:
    export.loc[:59, "tenure"] = "-1"
    _, report = validate(export, settings(max_dropped_fraction=0.1))
    assert not report.passed
    assert "60 of 400 rows (15.0%)" in report.failures[0]
    assert "tenure row 1" in report.failures[0]


def test_one_class_only_fails(export: pd.DataFrame) -> None:
    export[TARGET] = "No"
    _, report = validate(export, settings())
    assert any("labelled 'Yes'" in failure for failure in report.failures)


def test_synthetic_quirks_are_all_caught() -> None:
    _, report = validate(as_export(generate(2000, seed=5, dirty_fraction=0.05)), settings())
    assert report.passed
    assert report.repaired["duplicate rows removed (exact copies)"] == 10
    assert report.unknown_categories["PaymentMethod"]["Crypto"] > 0
    assert any(reason.startswith("tenure") for reason in report.dropped)
