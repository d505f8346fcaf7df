"""Customer rows as clients send them, as the input of `FeatureSpec.transform` (in process)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from model.schema import FEATURES, NumericFeature


def spec_columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Numeric features as float64 (blank text = NaN = missing), categoricals as objects."""
    columns: dict[str, np.ndarray] = {}
    for feature in FEATURES:
        values = [row[feature.name] for row in rows]
        if isinstance(feature, NumericFeature):
            columns[feature.name] = np.array(
                [float(v) if str(v).strip() else np.nan for v in values]
            )
        else:
            columns[feature.name] = np.array(values, dtype=object)
    return columns
