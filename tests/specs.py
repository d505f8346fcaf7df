"""Feature specs fitted by hand from the schema, for tests that need exact, known statistics."""

from __future__ import annotations

from model.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from model.spec import CategoricalSpec, FeatureSpec, NumericSpec, UnknownPolicy


def schema_spec(
    *, impute_value: float, mean: float, scale: float, unknown: UnknownPolicy = "reject"
) -> FeatureSpec:
    """Every feature with the same mean and scale; imputed features fill with `impute_value`."""
    numeric = tuple(
        NumericSpec.fitted(
            f,
            impute_value=impute_value if f.missing == "impute" else None,
            mean=mean,
            scale=scale,
        )
        for f in NUMERIC_FEATURES
    )
    categorical = tuple(
        CategoricalSpec(name=f.name, vocabulary=f.values, unknown=unknown)
        for f in CATEGORICAL_FEATURES
    )
    return FeatureSpec.build(numeric, categorical)
