"""Schema and data-quality checks on a customer export, before anything is fitted.

Rows are repaired where the fix is certain (spelling of a category, duplicate copies of the
same row) and dropped otherwise, each with a counted reason. Blank values of features whose
declared policy is "impute" are kept: the fitted spec imputes them, in training and serving.
Row numbers in the report are 1-based CSV data rows (the header is row 0).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from pydantic import BaseModel

from model.errors import MAX_REPORTED_ERRORS, ErrorCode, FieldError
from model.schema import (
    CATEGORICAL_FEATURES,
    CUSTOMER_ID,
    FEATURE_NAMES,
    MAX_NUMBER_TEXT_CHARS,
    NUMERIC_FEATURES,
    TARGET,
    TARGET_VALUES,
)
from model.spec import MISSING, UNKNOWN, category_codes, parse_numbers
from training.settings import TrainingSettings


class DataError(ValueError):
    """The data cannot be trained on. The message names columns and example rows."""


class Example(BaseModel):
    field: str
    row: int
    reason: str


class ValidationReport(BaseModel):
    input_rows: int
    clean_rows: int
    passed: bool
    failures: list[str]
    dropped: dict[str, int]
    repaired: dict[str, int]
    missing_values: dict[str, int]
    imputed: dict[str, int]
    unknown_categories: dict[str, dict[str, int]]
    duplicate_ids: int
    ignored_columns: list[str]
    class_counts: dict[str, int]
    examples: list[Example]

    def summary(self) -> str:
        lines = [
            f"validation: {self.input_rows} rows in, {self.clean_rows} clean, "
            f"{'PASSED' if self.passed else 'FAILED'}"
        ]
        lines += [f"  dropped  {n:>8}  {reason}" for reason, n in sorted(self.dropped.items())]
        lines += [f"  repaired {n:>8}  {reason}" for reason, n in sorted(self.repaired.items())]
        lines += [f"  imputed  {n:>8}  {col} (declared policy)" for col, n in self.imputed.items()]
        if self.ignored_columns:
            lines.append(f"  ignored columns: {', '.join(self.ignored_columns)}")
        lines += [f"  examples: {e.field} row {e.row}: {e.reason}" for e in self.examples[:5]]
        lines += [f"  FAILURE: {f}" for f in self.failures]
        return "\n".join(lines)


class _Findings:
    def __init__(self, rows: int) -> None:
        self.drop = np.zeros(rows, dtype=bool)
        self.dropped: dict[str, int] = {}
        self.repaired: dict[str, int] = {}
        self.examples: list[FieldError] = []

    def reject(self, field: str, mask: np.ndarray, code: ErrorCode, reason: str) -> None:
        if not mask.any():
            return
        newly = mask & ~self.drop
        key = f"{field}: {reason}"
        self.dropped[key] = self.dropped.get(key, 0) + int(newly.sum())
        self.drop |= mask
        room = MAX_REPORTED_ERRORS - len(self.examples)
        self.examples += [
            FieldError(field, int(r) + 1, code, reason) for r in np.flatnonzero(mask)[:room]
        ]

    def repair(self, reason: str, count: int) -> None:
        if count:
            self.repaired[reason] = self.repaired.get(reason, 0) + count


def read_csv(data: bytes | str) -> pd.DataFrame:
    """Every cell as text, blanks preserved: validation decides what they mean."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    return pd.read_csv(source, dtype=str, keep_default_na=False, skipinitialspace=False)


def validate(
    raw: pd.DataFrame, settings: TrainingSettings
) -> tuple[pd.DataFrame, ValidationReport]:
    """Return the clean frame (canonical categories, float numerics, 0/1 label) and the report.

    Raises DataError when required columns are absent. Threshold breaches are reported in
    the report (passed=False); the caller decides to stop.
    """
    absent = [c for c in (*FEATURE_NAMES, TARGET) if c not in raw.columns]
    if absent:
        raise DataError(
            f"missing required column(s): {', '.join(absent)}; "
            f"found: {', '.join(map(str, raw.columns)) or 'none'}"
        )
    rows = len(raw)
    findings = _Findings(rows)
    clean = pd.DataFrame(index=raw.index)
    missing_values: dict[str, int] = {}
    imputed: dict[str, int] = {}
    unknown_categories: dict[str, dict[str, int]] = {}

    for feature in CATEGORICAL_FEATURES:
        values = raw[feature.name].to_numpy(dtype=str)
        codes = category_codes(values, feature.values)
        canonical = np.asarray(feature.values, dtype=object)[np.clip(codes, 0, None)]
        findings.repair(
            f"{feature.name}: spelling normalized (case/whitespace)",
            int(((codes >= 0) & (values != canonical)).sum()),
        )
        missing = codes == MISSING
        missing_values[feature.name] = int(missing.sum())
        findings.reject(feature.name, missing, ErrorCode.MISSING_VALUE, "value is missing")
        unknown = codes == UNKNOWN
        if unknown.any():
            seen = pd.Series(values[unknown]).str.strip().value_counts()
            unknown_categories[feature.name] = {str(k): int(v) for k, v in seen.items()}
        findings.reject(feature.name, unknown, ErrorCode.UNKNOWN_CATEGORY, "unknown category")
        clean[feature.name] = canonical

    for numeric in NUMERIC_FEATURES:
        # The number grammar and length limit of serving (model/), so no text skews the two.
        text = raw[numeric.name]
        findings.reject(
            numeric.name,
            (text.str.len() > MAX_NUMBER_TEXT_CHARS).to_numpy(),
            ErrorCode.TOO_LONG,
            f"longer than {MAX_NUMBER_TEXT_CHARS} characters",
        )
        values, unparsable = parse_numbers(text.tolist())
        findings.reject(numeric.name, unparsable, ErrorCode.NOT_A_NUMBER, "is not a number")
        missing = np.isnan(values) & ~unparsable
        missing_values[numeric.name] = int(missing.sum())
        if numeric.missing == "impute":
            imputed[numeric.name] = int(missing.sum())
        else:
            findings.reject(numeric.name, missing, ErrorCode.MISSING_VALUE, "value is missing")
        with np.errstate(invalid="ignore"):
            out_of_range = (values < numeric.minimum) | (values > numeric.maximum)
        findings.reject(
            numeric.name,
            out_of_range,
            ErrorCode.OUT_OF_RANGE,
            f"outside the valid range [{numeric.minimum:g}, {numeric.maximum:g}]",
        )
        if numeric.integer:
            findings.reject(
                numeric.name,
                np.isfinite(values) & (values != np.floor(values)),
                ErrorCode.NOT_WHOLE,
                "must be a whole number",
            )
        clean[numeric.name] = values

    label = category_codes(raw[TARGET].to_numpy(dtype=str), TARGET_VALUES)
    findings.reject(
        TARGET,
        label < 0,
        ErrorCode.INVALID_LABEL,
        f"label must be one of {'/'.join(TARGET_VALUES)}",
    )
    clean[TARGET] = label

    copies, duplicate_ids = _handle_duplicates(raw, findings)

    kept = ~(findings.drop | copies)
    clean = clean.loc[kept].reset_index(drop=True)
    for name, count in imputed.items():
        imputed[name] = int(clean[name].isna().sum()) if count else 0
    class_counts = {
        TARGET_VALUES[i]: int((clean[TARGET] == i).sum()) for i in range(len(TARGET_VALUES))
    }
    failures = _threshold_failures(
        rows=rows,
        clean=clean,
        missing_values=missing_values,
        class_counts=class_counts,
        findings=findings,
        settings=settings,
    )
    report = ValidationReport(
        input_rows=rows,
        clean_rows=len(clean),
        passed=not failures,
        failures=failures,
        dropped=findings.dropped,
        repaired=findings.repaired,
        missing_values={k: v for k, v in missing_values.items() if v},
        imputed={k: v for k, v in imputed.items() if v},
        unknown_categories=unknown_categories,
        duplicate_ids=duplicate_ids,
        ignored_columns=[c for c in raw.columns if c not in (CUSTOMER_ID, *FEATURE_NAMES, TARGET)],
        class_counts=class_counts,
        examples=[
            Example(field=e.field, row=e.row or 0, reason=e.reason) for e in findings.examples
        ],
    )
    return clean, report


def _handle_duplicates(raw: pd.DataFrame, findings: _Findings) -> tuple[np.ndarray, int]:
    """Identical copies of a row are repairs; the same customerID with other data is a conflict.

    Returns the mask of redundant copies and the number of repeated customerIDs.
    """
    exact_copies = raw.duplicated(keep="first").to_numpy()
    if CUSTOMER_ID not in raw.columns:
        return exact_copies, 0
    ids = raw[CUSTOMER_ID].str.strip()
    findings.repair("duplicate rows removed (exact copies)", int(exact_copies.sum()))
    with_id = (ids != "").to_numpy()
    distinct = pd.Series(np.where(exact_copies, "", ids), index=ids.index)
    conflicting = distinct.duplicated(keep=False).to_numpy() & with_id & ~exact_copies
    # Which copy is right is unknowable: drop every conflicting row rather than guess.
    findings.reject(
        CUSTOMER_ID,
        conflicting,
        ErrorCode.DUPLICATE_ID,
        "duplicate customerID with conflicting values",
    )
    return exact_copies, int(ids[with_id].duplicated().sum())


def _threshold_failures(
    *,
    rows: int,
    clean: pd.DataFrame,
    missing_values: dict[str, int],
    class_counts: dict[str, int],
    findings: _Findings,
    settings: TrainingSettings,
) -> list[str]:
    failures = []
    dropped = int(findings.drop.sum())
    if rows and dropped / rows > settings.max_dropped_fraction:
        worst = sorted(findings.dropped.items(), key=lambda kv: -kv[1])[:3]
        examples = ", ".join(f"{e.field} row {e.row}" for e in findings.examples[:3])
        failures.append(
            f"{dropped} of {rows} rows ({dropped / rows:.1%}) are unusable, above the "
            f"{settings.max_dropped_fraction:.0%} limit; most common: "
            f"{'; '.join(f'{k} ({v})' for k, v in worst)}; e.g. {examples}"
        )
    for column, count in missing_values.items():
        if rows and count / rows > settings.max_missing_fraction:
            failures.append(
                f"column {column}: {count} of {rows} values missing ({count / rows:.1%}), "
                f"above the {settings.max_missing_fraction:.0%} limit"
            )
    if len(clean) < settings.min_rows:
        failures.append(f"only {len(clean)} clean rows, at least {settings.min_rows} needed")
    for label, count in class_counts.items():
        if count < settings.min_class_rows:
            failures.append(
                f"column {TARGET}: only {count} rows labelled {label!r}, "
                f"at least {settings.min_class_rows} needed"
            )
    return failures
