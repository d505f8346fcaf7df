"""Parsing the prediction log and labels, and joining them on the HMAC customer key."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pandas as pd
import pytest

from model.keys import customer_key, read_secret
from monitoring.io import InputError, read_table
from monitoring.join import (
    LABEL_COLUMNS,
    OUTCOME,
    PREDICTION_COLUMNS,
    join,
    parse_labels,
    parse_predictions,
)

SECRET = b"s3cret"


def test_customer_key_is_hmac_sha256_of_the_stripped_id() -> None:
    expected = hmac.new(SECRET, b"7590-VHVEG", hashlib.sha256).hexdigest()
    assert customer_key(" 7590-VHVEG ", SECRET) == expected
    assert customer_key("7590-VHVEG", b"other") != expected


def test_the_secret_file_loses_its_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "key").write_bytes(b"s3cret\n")
    assert read_secret(tmp_path / "key") == SECRET
    (tmp_path / "empty").write_bytes(b"\n")
    with pytest.raises(ValueError, match="empty"):
        read_secret(tmp_path / "empty")


def predictions(rows: list[dict[str, object]]) -> pd.DataFrame:
    base = {"request_id": "r", "bundle_version": "v1", "churn": False}
    frame = pd.DataFrame([{**base, **row} for row in rows])
    return frame.assign(_source="log.csv", _row=range(len(frame)))


def labels(rows: list[dict[str, object]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    return frame.assign(_source="labels.csv", _row=range(len(frame)))


def test_predictions_join_labels_by_hashed_id() -> None:
    log = predictions(
        [
            {"scored_at": "2026-11-01T10:00:00Z", "arm": "stable",
             "customer_key": customer_key("A", SECRET), "churn_probability": 0.2},
            {"scored_at": "2026-11-01T11:00:00Z", "arm": "candidate",
             "customer_key": customer_key("B", SECRET), "churn_probability": 0.7},
            {"scored_at": "2026-11-01T12:00:00Z", "arm": "stable",
             "customer_key": customer_key("unlabelled", SECRET), "churn_probability": 0.5},
        ]
    )  # fmt: skip
    outcomes = labels([{"customerID": "A", "Churn": "No"}, {"customerID": " B", "Churn": "yes "}])
    joined = join(parse_predictions(log, None, None), parse_labels(outcomes), SECRET)
    assert joined.frame[["arm", OUTCOME]].values.tolist() == [["stable", 0], ["candidate", 1]]
    assert joined.counts["joined"] == 2
    assert "customerID" not in joined.frame.columns


def test_a_wrong_key_joins_nothing_and_no_key_is_an_error() -> None:
    log = predictions(
        [{"scored_at": "2026-11-01", "arm": "stable", "customer_key": customer_key("A", SECRET),
          "churn_probability": 0.2}]
    )  # fmt: skip
    outcomes = parse_labels(labels([{"customerID": "A", "Churn": "No"}]))
    assert join(parse_predictions(log, None, None), outcomes, b"wrong").counts["joined"] == 0
    with pytest.raises(InputError, match="CHURN_MONITORING_CUSTOMER_KEY_FILE"):
        join(parse_predictions(log, None, None), outcomes, None)


def test_raw_customer_ids_join_without_a_key() -> None:
    log = predictions(
        [{"scored_at": "2026-11-01", "arm": "stable", "customerID": "A", "churn_probability": 0.2}]
    )
    joined = join(
        parse_predictions(log, None, None),
        parse_labels(labels([{"customerID": "A", "Churn": "Yes"}])),
        None,
    )
    assert joined.counts["joined"] == 1
    assert "raw customerIDs" in joined.notes[0]


def test_window_label_date_repeats_and_relabels() -> None:
    scored = [
        ("2026-10-30", "stable", "A", 0.1),  # before the window
        ("2026-11-02", "stable", "A", 0.3),  # superseded by the next score
        ("2026-11-03", "stable", "A", 0.4),
        ("2026-11-20", "stable", "B", 0.9),  # after B's outcome was known
        ("2026-11-04", "candidate", "A", 0.6),
    ]
    columns = ("scored_at", "arm", "customerID", "churn_probability")
    log = predictions([dict(zip(columns, row, strict=True)) for row in scored])
    outcomes = labels(
        [
            {"customerID": "A", "Churn": "No", "label_date": "2026-11-05"},
            {"customerID": "A", "Churn": "Yes", "label_date": "2026-11-10"},  # the latest wins
            {"customerID": "B", "Churn": "Yes", "label_date": "2026-11-15"},  # B scored after
        ]
    )
    since = pd.Timestamp("2026-11-01", tz="UTC").to_pydatetime()
    joined = join(parse_predictions(log, since, None), parse_labels(outcomes), None)
    rows = joined.frame.sort_values("arm")[["arm", "churn_probability", OUTCOME]]
    assert rows.values.tolist() == [["candidate", 0.6, 1], ["stable", 0.4, 1]]
    assert joined.counts == {
        "predictions": 4,
        "labels": 2,
        "labelled_predictions": 4,
        "scored_after_label": 1,
        "repeat_scores_dropped": 1,
        "joined": 2,
    }


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (
            "scored_at",
            "yesterday",
            "column 'scored_at', row 1 of log.csv: 'yesterday' is not a date",
        ),
        ("churn_probability", "1.5", "column 'churn_probability', row 1 of log.csv: '1.5' is not"),
        ("churn", "maybe", "column 'churn', row 1 of log.csv: 'maybe' is not one of"),
    ],
)
def test_bad_prediction_values_name_column_row_and_file(
    column: str, value: str, message: str
) -> None:
    good = {"scored_at": "2026-11-01", "arm": "stable", "customerID": "A",
            "churn_probability": "0.5", "churn": "false"}  # fmt: skip
    log = predictions([good, {**good, column: value}])
    with pytest.raises(InputError, match=message):
        parse_predictions(log, None, None)


def test_bad_labels_name_column_row_and_file() -> None:
    with pytest.raises(InputError, match=r"labels: column 'Churn', row 1 of labels.csv: 'Maybe'"):
        parse_labels(
            labels([{"customerID": "A", "Churn": "No"}, {"customerID": "B", "Churn": "Maybe"}])
        )


def test_read_table_names_the_file_missing_a_column(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    pd.DataFrame({"scored_at": ["2026-11-01"]}).to_csv(tmp_path / "logs" / "a.csv", index=False)
    with pytest.raises(InputError, match=r"column 'request_id' is missing in .*logs/a.csv"):
        read_table(str(tmp_path / "logs"), "predictions", PREDICTION_COLUMNS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"labels: no \.csv or \.parquet files at"):
        read_table(str(tmp_path / "empty"), "labels", LABEL_COLUMNS)
    with pytest.raises(InputError, match="no such file or directory"):
        read_table(str(tmp_path / "absent.csv"), "labels", LABEL_COLUMNS)


def test_read_table_reads_csv_and_parquet_parts_of_a_directory(tmp_path: Path) -> None:
    pd.DataFrame({"customerID": ["0001"], "Churn": ["No"]}).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame({"customerID": ["0002"], "Churn": ["Yes"]}).to_parquet(tmp_path / "b.parquet")
    (tmp_path / "notes.txt").write_text("ignored")
    frame = read_table(str(tmp_path), "labels", LABEL_COLUMNS)
    # IDs stay strings (leading zeros kept); each row knows its file.
    assert frame["customerID"].tolist() == ["0001", "0002"]
    assert [Path(s).name for s in frame["_source"]] == ["a.csv", "b.parquet"]
